"""The model zoo: name -> factory, described without importing torch.

Torch models are built by a factory ``f(batch=..., seq_len=...) -> (module, example_input)``
and lowered; trace-native workloads (the TPU-paper and EIE benchmark shapes) are built
directly as a :class:`~workloads.trace.Workload`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["ZooEntry", "ZOO", "TPU_WORKLOADS"]


@dataclass(frozen=True)
class ZooEntry:
    name: str
    module: str          # workloads.zoo.<module>
    factory: str
    torch: bool          # True: factory returns (nn.Module, example input) to lower
    description: str
    reference: str = ""  # published MACs (G) for one example, where there is one

    def load(self):
        return getattr(importlib.import_module(f"workloads.zoo.{self.module}"), self.factory)


ZOO: dict[str, ZooEntry] = {e.name: e for e in (
    ZooEntry("alexnet", "cnn", "alexnet", True, "AlexNet (torchvision variant), 224x224", "0.714"),
    ZooEntry("alexnet-bvlc", "cnn", "alexnet_bvlc", True,
             "the original two-GPU AlexNet (BVLC Caffe, ZigZag's alexnet.onnx): grouped convs, LRN, 224x224"),
    ZooEntry("vgg16", "cnn", "vgg16", True, "VGG-16, 224x224", "15.47"),
    ZooEntry("googlenet", "cnn", "googlenet", True, "GoogLeNet / Inception v1 (torchvision), 224x224", "1.50"),
    ZooEntry("resnet18", "cnn", "resnet18", True, "ResNet-18, 224x224", "1.814"),
    ZooEntry("resnet50", "cnn", "resnet50", True, "ResNet-50 (v1.5), 224x224", "4.09"),
    ZooEntry("mobilenet_v2", "cnn", "mobilenet_v2", True, "MobileNetV2 (depthwise separable), 224x224", "0.30"),
    ZooEntry("lstm_lm", "rnn", "lstm_lm", True, "2-layer LSTM language model (650 hidden, 10k vocab), seq 35"),
    ZooEntry("gru", "rnn", "gru", True, "2-layer GRU (512 hidden) over 80-dim frames, seq 50"),
    ZooEntry("captioner", "rnn", "captioner", True, "NeuralTalk-style captioner: AlexNet -> We -> LSTM(600) -> Wd, seq 16"),
    ZooEntry("lenet300", "lenet", "lenet300", True, "LeNet-300-100 MLP, 28x28"),
    ZooEntry("lenet5", "lenet", "lenet5", True, "LeNet-5 (Caffe variant, 20/50 filters, fc 500), 28x28"),
    ZooEntry("mlp0", "tpu", "mlp0", False, "TPU-paper MLP0: 5 FC, 20M int8 weights, batch 200"),
    ZooEntry("mlp1", "tpu", "mlp1", False, "TPU-paper MLP1: 4 FC, 5M int8 weights, batch 168"),
    ZooEntry("lstm0", "tpu", "lstm0", False, "TPU-paper LSTM0: 24 FC + 34 vector, 52M int8 weights, batch 64"),
    ZooEntry("lstm1", "tpu", "lstm1", False, "TPU-paper LSTM1: 37 FC + 19 vector, 34M int8 weights, batch 96"),
    ZooEntry("cnn0", "tpu", "cnn0", False, "TPU-paper CNN0: 16 conv, 8M int8 weights, batch 8"),
    ZooEntry("cnn1", "tpu", "cnn1", False, "TPU-paper CNN1: 72 conv + 4 FC + 13 pool, 100M int8 weights, batch 32"),
    ZooEntry("eie-benchmarks", "eie", "eie_benchmarks", False, "The nine EIE benchmark layers (alex6..nt-lstm), paper densities"),
    ZooEntry("gpt2", "transformer", "gpt2", True, "GPT-2 124M: 12 x 768, 12 heads, vocab 50,257, seq 1,024"),
    ZooEntry("gpt2-medium", "transformer", "gpt2_medium", True, "GPT-2 355M: 24 x 1024, 16 heads, seq 1,024"),
    ZooEntry("gpt2-large", "transformer", "gpt2_large", True, "GPT-2 774M: 36 x 1280, 20 heads, seq 1,024"),
    ZooEntry("gpt2-xl", "transformer", "gpt2_xl", True, "GPT-2 1.5B: 48 x 1600, 25 heads, seq 1,024"),
    ZooEntry("gpt3-175b", "transformer", "gpt3", True, "GPT-3 175B: 96 x 12288, 96 heads, seq 2,048 (meta device)"),
    ZooEntry("llama3-8b", "transformer", "llama", True,
             "Llama 3 8B shape: RMSNorm, SwiGLU, RoPE, 32 query / 8 key-value heads, seq 2,048 (meta device)"),
    ZooEntry("llama3-405b", "transformer", "llama3_405b", True,
             "Llama 3 405B shape: 126 x 16384, 128 query / 8 key-value heads, FFN 53,248, seq 8,192 (meta device)"),
    ZooEntry("llama-tiny", "transformer", "llama_tiny", True, "Llama-style decoder at 2 x 256, 8/2 heads, seq 128"),
    ZooEntry("mixtral-8x7b", "transformer", "mixtral", True,
             "Mixtral 8x7B shape: 8 SwiGLU experts, top 2, GQA 32/8 heads, seq 2,048 (meta device)"),
    ZooEntry("deepseek-moe-16b", "transformer", "deepseek_moe", True,
             "DeepSeekMoE 16B shape: 64 routed experts (top 6) + 2 shared, first layer dense, seq 2,048 (meta device)"),
    ZooEntry("moe-tiny", "transformer", "moe_tiny", True, "Mixtral-style MoE decoder at 2 x 256, 4 experts, top 2, seq 128"),
    ZooEntry("bert-base", "transformer", "bert", True, "BERT-base: 12 x 768, 12 heads, seq 128", "11.2"),
    ZooEntry("bert-large", "transformer", "bert_large", True, "BERT-large: 24 x 1024, 16 heads, seq 128"),
    ZooEntry("vit-b16", "transformer", "vit_b16", True, "ViT-B/16, 224x224", "17.56"),
)}

TPU_WORKLOADS = ("mlp0", "mlp1", "lstm0", "lstm1", "cnn0", "cnn1")
