"""Torch reference networks with torchvision's exact module names, so that their state-dict
keys are torchvision's (no torchvision build is needed). Import it inside a test that has
already required torch (``pytest.importorskip("torch")``)."""

import torch

tnn = torch.nn


class TorchBasicBlock(tnn.Module):
    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = tnn.Sequential(tnn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                             tnn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TorchResNet18(tnn.Module):
    """torchvision.models.resnet18's layout and names."""

    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(64)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, planes in enumerate((64, 128, 256, 512), start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", tnn.Sequential(TorchBasicBlock(inplanes, planes, stride),
                                                      TorchBasicBlock(planes, planes)))
            inplanes = planes
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def torch_vgg(stages, batch_norm, num_classes=1000):
    """torchvision.models.vgg's ``features``/``classifier`` Sequentials (same indices)."""
    layers, in_ch = [], 3
    for num_convs, width in zip(stages, (64, 128, 256, 512, 512)):
        for _ in range(num_convs):
            layers.append(tnn.Conv2d(in_ch, width, 3, padding=1))
            if batch_norm:
                layers.append(tnn.BatchNorm2d(width))
            layers.append(tnn.ReLU(inplace=True))
            in_ch = width
        layers.append(tnn.MaxPool2d(2, 2))
    model = tnn.Module()
    model.features = tnn.Sequential(*layers)
    model.avgpool = tnn.AdaptiveAvgPool2d((7, 7))
    model.classifier = tnn.Sequential(
        tnn.Linear(512 * 7 * 7, 4096), tnn.ReLU(True), tnn.Dropout(),
        tnn.Linear(4096, 4096), tnn.ReLU(True), tnn.Dropout(), tnn.Linear(4096, num_classes))
    model.forward = lambda x: model.classifier(
        torch.flatten(model.avgpool(model.features(x)), 1))
    return model


def randomize_bn(module, seed=0):
    """Random BN affine and running statistics, so a wrong stats mapping cannot pass."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, tnn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=gen) + 0.5)
    return module


def torch_forward(module, x_nhwc):
    with torch.no_grad():
        return module.eval()(torch.from_numpy(x_nhwc.transpose(0, 3, 1, 2))).numpy()


class TorchEncoderBlock(tnn.Module):
    """torchvision.models.vision_transformer.EncoderBlock's names."""

    def __init__(self, heads, dim, mlp_dim):
        super().__init__()
        self.ln_1 = tnn.LayerNorm(dim, eps=1e-6)
        self.self_attention = tnn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = tnn.LayerNorm(dim, eps=1e-6)
        self.mlp = tnn.Sequential(tnn.Linear(dim, mlp_dim), tnn.GELU(), tnn.Dropout(0.0),
                                  tnn.Linear(mlp_dim, dim), tnn.Dropout(0.0))

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.self_attention(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class TorchViT(tnn.Module):
    """torchvision.models.VisionTransformer's names (conv_proj, class_token, encoder.*, heads)."""

    def __init__(self, image_size, patch, layers, heads, dim, mlp_dim, num_classes):
        super().__init__()
        self.patch = patch
        self.conv_proj = tnn.Conv2d(3, dim, patch, patch)
        self.class_token = tnn.Parameter(torch.randn(1, 1, dim))
        self.encoder = tnn.Module()
        self.encoder.pos_embedding = tnn.Parameter(
            torch.randn(1, (image_size // patch) ** 2 + 1, dim) * 0.5)
        self.encoder.layers = tnn.Sequential(*[])
        for i in range(layers):
            self.encoder.layers.add_module(f"encoder_layer_{i}",
                                           TorchEncoderBlock(heads, dim, mlp_dim))
        self.encoder.ln = tnn.LayerNorm(dim, eps=1e-6)
        self.heads = tnn.Sequential()
        self.heads.add_module("head", tnn.Linear(dim, num_classes))

    def forward(self, x):
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.encoder.ln(self.encoder.layers(x + self.encoder.pos_embedding))
        return self.heads(x[:, 0])
