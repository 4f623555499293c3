"""Torch MobileNetV2 and EfficientNet-B0 with torchvision's module names and state-dict keys,
written from the papers' tables (no torchvision build is needed). Import it inside a test
that has already required torch (``pytest.importorskip("torch")``)."""

import math

import torch

tnn = torch.nn


def conv_norm_act(cin, cout, kernel=3, stride=1, groups=1, act=tnn.ReLU6):
    """torchvision ``Conv2dNormActivation``: a Sequential ``0`` conv, ``1`` BN[, ``2`` act]."""
    layers = [tnn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups,
                         bias=False), tnn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return tnn.Sequential(*layers)


def divisible(value, divisor=8):
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


class TorchInvertedResidual(tnn.Module):
    """``features.N`` of torchvision's MobileNetV2: ``conv`` = [expand,] depthwise, conv, BN."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.use_res_connect = stride == 1 and cin == cout
        layers = [conv_norm_act(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_norm_act(hidden, hidden, 3, stride, groups=hidden),
                   tnn.Conv2d(hidden, cout, 1, bias=False), tnn.BatchNorm2d(cout)]
        self.conv = tnn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TorchMobileNetV2(tnn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        setting = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                   (6, 160, 3, 2), (6, 320, 1, 1))
        cin = divisible(32 * width_mult)
        last = divisible(1280 * max(1.0, width_mult))
        layers = [conv_norm_act(3, cin, 3, 2)]
        for t, c, n, s in setting:
            for i in range(n):
                layers.append(TorchInvertedResidual(cin, divisible(c * width_mult),
                                                    s if i == 0 else 1, t))
                cin = divisible(c * width_mult)
        layers.append(conv_norm_act(cin, last, 1))
        self.features = tnn.Sequential(*layers)
        self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(last, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


class TorchSqueezeExcitation(tnn.Module):
    """torchvision.ops.SqueezeExcitation: ``fc1``/``fc2`` 1x1 convs with bias."""

    def __init__(self, channels, squeeze):
        super().__init__()
        self.fc1 = tnn.Conv2d(channels, squeeze, 1)
        self.fc2 = tnn.Conv2d(squeeze, channels, 1)
        self.activation = tnn.SiLU()

    def forward(self, x):
        s = self.fc2(self.activation(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(s)


class TorchMBConv(tnn.Module):
    """``features.S.J`` of torchvision's EfficientNet: ``block`` = [expand,] dw, SE, project."""

    def __init__(self, cin, cout, kernel, stride, expand):
        super().__init__()
        hidden = divisible(cin * expand)
        self.use_res_connect = stride == 1 and cin == cout
        layers = [conv_norm_act(cin, hidden, 1, act=tnn.SiLU)] if hidden != cin else []
        layers += [conv_norm_act(hidden, hidden, kernel, stride, groups=hidden, act=tnn.SiLU),
                   TorchSqueezeExcitation(hidden, max(1, cin // 4)),
                   conv_norm_act(hidden, cout, 1, act=None)]
        self.block = tnn.Sequential(*layers)

    def forward(self, x):  # eval: stochastic depth is the identity
        return x + self.block(x) if self.use_res_connect else self.block(x)


class TorchEfficientNet(tnn.Module):
    def __init__(self, width_mult=1.0, depth_mult=1.0, num_classes=1000):
        super().__init__()
        stages = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                  (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                  (6, 3, 1, 192, 320, 1))
        width = lambda c: divisible(c * width_mult)  # noqa: E731
        layers = [conv_norm_act(3, width(32), 3, 2, act=tnn.SiLU)]
        for t, k, s, cin, cout, n in stages:
            blocks = []
            for j in range(math.ceil(n * depth_mult)):
                blocks.append(TorchMBConv(width(cin) if j == 0 else width(cout), width(cout), k,
                                          s if j == 0 else 1, t))
            layers.append(tnn.Sequential(*blocks))
        last = 4 * width(320)
        layers.append(conv_norm_act(width(320), last, 1, act=tnn.SiLU))
        self.features = tnn.Sequential(*layers)
        self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(last, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))
