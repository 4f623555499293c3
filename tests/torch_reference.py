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
    """Random BN affine and running statistics (BatchNorm2d parameters or FrozenBatchNorm2d
    buffers), so a wrong statistics mapping cannot pass."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (tnn.BatchNorm2d, TorchFrozenBatchNorm2d)):
                c = m.weight.shape[0]
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


# --- RetinaNet (torchvision.models.detection.retinanet_resnet50_fpn's module names) ---------


class TorchFrozenBatchNorm2d(tnn.Module):
    """torchvision.ops.FrozenBatchNorm2d: four buffers, no parameters."""

    def __init__(self, n, eps=1e-5):
        super().__init__()
        self.eps = eps
        for name, init in (("weight", torch.ones), ("bias", torch.zeros),
                           ("running_mean", torch.zeros), ("running_var", torch.ones)):
            self.register_buffer(name, init(n))

    def forward(self, x):
        scale = self.weight.reshape(1, -1, 1, 1) * (self.running_var.reshape(1, -1, 1, 1)
                                                   + self.eps).rsqrt()
        bias = self.bias.reshape(1, -1, 1, 1) - self.running_mean.reshape(1, -1, 1, 1) * scale
        return x * scale + bias


class TorchBottleneck(tnn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride, norm):
        super().__init__()
        out = planes * 4
        self.conv1 = tnn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = tnn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = norm(planes)
        self.conv3 = tnn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = norm(out)
        self.relu = tnn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != out:
            self.downsample = tnn.Sequential(tnn.Conv2d(inplanes, out, 1, stride, bias=False),
                                             norm(out))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


class TorchResNetBody(tnn.Module):
    """torchvision's IntermediateLayerGetter over a ResNet-50: conv1..layer4, returns C3-C5."""

    def __init__(self, norm, stages=(3, 4, 6, 3)):
        super().__init__()
        self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = norm(64)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        inplanes = 64
        for i, (blocks, planes) in enumerate(zip(stages, (64, 128, 256, 512)), start=1):
            layers = []
            for j in range(blocks):
                layers.append(TorchBottleneck(inplanes, planes, 2 if i > 1 and j == 0 else 1, norm))
                inplanes = planes * 4
            setattr(self, f"layer{i}", tnn.Sequential(*layers))

    def forward(self, x):
        x = self.layer1(self.maxpool(self.relu(self.bn1(self.conv1(x)))))
        c3 = self.layer2(x)
        c4 = self.layer3(c3)
        return [c3, c4, self.layer4(c4)]


class TorchFPN(tnn.Module):
    """torchvision.ops.FeaturePyramidNetwork + LastLevelP6P7 (P6 from P5 when in == out)."""

    def __init__(self, in_channels=(512, 1024, 2048), channels=256, p6_in=256):
        super().__init__()
        self.inner_blocks = tnn.ModuleList(
            [tnn.Sequential(tnn.Conv2d(c, channels, 1)) for c in in_channels])
        self.layer_blocks = tnn.ModuleList(
            [tnn.Sequential(tnn.Conv2d(channels, channels, 3, padding=1)) for _ in in_channels])
        self.extra_blocks = tnn.Module()
        self.extra_blocks.p6 = tnn.Conv2d(p6_in, channels, 3, 2, 1)
        self.extra_blocks.p7 = tnn.Conv2d(channels, channels, 3, 2, 1)
        self.use_p5 = p6_in == channels
        for m in self.modules():
            if isinstance(m, tnn.Conv2d):
                tnn.init.kaiming_uniform_(m.weight, a=1)
                tnn.init.constant_(m.bias, 0)

    def forward(self, feats):
        last = self.inner_blocks[-1](feats[-1])
        results = [self.layer_blocks[-1](last)]
        for i in range(len(feats) - 2, -1, -1):
            lateral = self.inner_blocks[i](feats[i])
            last = lateral + tnn.functional.interpolate(last, size=lateral.shape[-2:],
                                                        mode="nearest")
            results.insert(0, self.layer_blocks[i](last))
        p6 = self.extra_blocks.p6(results[-1] if self.use_p5 else feats[-1])
        p7 = self.extra_blocks.p7(torch.relu(p6))
        return results + [p6, p7]


class TorchRetinaHead(tnn.Module):
    """RetinaNetClassificationHead / RetinaNetRegressionHead (norm: GroupNorm for v2)."""

    def __init__(self, out_per_anchor, out_name, num_anchors=9, channels=256, group_norm=False,
                 prior=None):
        super().__init__()
        convs = []
        for _ in range(4):
            layers = [tnn.Conv2d(channels, channels, 3, padding=1, bias=not group_norm)]
            if group_norm:
                layers.append(tnn.GroupNorm(32, channels))
            layers.append(tnn.ReLU(inplace=True))
            convs.append(tnn.Sequential(*layers))
        self.conv = tnn.Sequential(*convs)
        setattr(self, out_name, tnn.Conv2d(channels, num_anchors * out_per_anchor, 3, padding=1))
        self.out_name, self.k, self.a = out_name, out_per_anchor, num_anchors
        for m in self.modules():
            if isinstance(m, tnn.Conv2d):
                tnn.init.normal_(m.weight, std=0.01)
                if m.bias is not None:
                    tnn.init.constant_(m.bias, 0)
        if prior is not None:
            import math
            tnn.init.constant_(getattr(self, out_name).bias, -math.log((1 - prior) / prior))

    def forward(self, levels):
        outs = []
        for x in levels:
            y = getattr(self, self.out_name)(self.conv(x))
            n, _, h, w = y.shape
            outs.append(y.view(n, self.a, self.k, h, w).permute(0, 3, 4, 1, 2)
                        .reshape(n, -1, self.k))
        return outs


class TorchRetinaNet(tnn.Module):
    """retinanet_resnet50_fpn(weights=None, weights_backbone=None) with FrozenBatchNorm2d, so
    the state-dict keys are torchvision's; ``forward`` returns per-level (logits, deltas)."""

    def __init__(self, num_classes=91, eps=1e-5, stages=(3, 4, 6, 3)):
        super().__init__()
        self.backbone = tnn.Module()
        self.backbone.body = TorchResNetBody(lambda n: TorchFrozenBatchNorm2d(n, eps), stages)
        self.backbone.fpn = TorchFPN()
        self.head = tnn.Module()
        self.head.classification_head = TorchRetinaHead(num_classes, "cls_logits", prior=0.01)
        self.head.regression_head = TorchRetinaHead(4, "bbox_reg")

    def forward(self, x):
        levels = self.backbone.fpn(self.backbone.body(x))
        return self.head.classification_head(levels), self.head.regression_head(levels)


def torch_retinanet_anchors(image_size, grid_sizes):
    """torchvision's AnchorGenerator for RetinaNet (sizes x 2^(k/3) truncated, ratios .5/1/2)."""
    sizes = [(x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in (32, 64, 128, 256, 512)]
    out = []
    for (gh, gw), level_sizes in zip(grid_sizes, sizes):
        scales = torch.as_tensor(level_sizes, dtype=torch.float32)
        ratios = torch.as_tensor((0.5, 1.0, 2.0))
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).view(-1)
        hs = (h_ratios[:, None] * scales[None, :]).view(-1)
        base = (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()
        sh, sw = image_size[0] // gh, image_size[1] // gw
        sy, sx = torch.meshgrid(torch.arange(gh) * sh, torch.arange(gw) * sw, indexing="ij")
        sx, sy = sx.reshape(-1).float(), sy.reshape(-1).float()
        shifts = torch.stack((sx, sy, sx, sy), dim=1)
        out.append((shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4))
    return out


def _torch_nms(boxes, scores, iou_threshold):
    """torchvision.ops.nms: greedy by decreasing score, suppress IoU > threshold."""
    order = torch.argsort(scores, descending=True, stable=True)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep, removed = [], torch.zeros(len(boxes), dtype=torch.bool)
    for i in order.tolist():
        if removed[i]:
            continue
        keep.append(i)
        lt = torch.maximum(boxes[i, :2], boxes[:, :2])
        rb = torch.minimum(boxes[i, 2:], boxes[:, 2:])
        inter = (rb - lt).clamp(min=0).prod(dim=1)
        removed |= inter / (area[i] + area - inter) > iou_threshold
    return torch.as_tensor(keep, dtype=torch.long)


def torch_postprocess_detections(cls_levels, box_levels, anchor_levels, image_size, *,
                                 score_thresh=0.05, topk_candidates=1000, nms_thresh=0.5,
                                 detections_per_img=300):
    """torchvision RetinaNet.postprocess_detections for one image (tensors per level, no batch
    axis): sigmoid, threshold, top-k per level, decode (BoxCoder(1,1,1,1), clamp log(1000/16)),
    clip, batched NMS (coordinate-offset trick), keep the first detections_per_img."""
    import math
    all_boxes, all_scores, all_labels = [], [], []
    for logits, deltas, anchors in zip(cls_levels, box_levels, anchor_levels):
        num_classes = logits.shape[-1]
        scores = torch.sigmoid(logits).flatten()
        keep = scores > score_thresh
        scores = scores[keep]
        topk_idxs = torch.where(keep)[0]
        num_topk = min(topk_candidates, topk_idxs.size(0))
        scores, idxs = scores.topk(num_topk)
        topk_idxs = topk_idxs[idxs]
        anchor_idxs = torch.div(topk_idxs, num_classes, rounding_mode="floor")
        labels = topk_idxs % num_classes
        d, a = deltas[anchor_idxs], anchors[anchor_idxs]
        widths, heights = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
        cx, cy = a[:, 0] + 0.5 * widths, a[:, 1] + 0.5 * heights
        dw = torch.clamp(d[:, 2], max=math.log(1000.0 / 16))
        dh = torch.clamp(d[:, 3], max=math.log(1000.0 / 16))
        px, py = d[:, 0] * widths + cx, d[:, 1] * heights + cy
        pw, ph = torch.exp(dw) * widths, torch.exp(dh) * heights
        boxes = torch.stack([px - 0.5 * pw, py - 0.5 * ph, px + 0.5 * pw, py + 0.5 * ph], 1)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, image_size[1])
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, image_size[0])
        all_boxes.append(boxes)
        all_scores.append(scores)
        all_labels.append(labels)
    boxes, scores, labels = map(torch.cat, (all_boxes, all_scores, all_labels))
    if boxes.numel() == 0:
        keep = torch.zeros(0, dtype=torch.long)
    else:
        offsets = labels.to(boxes) * (boxes.max() + 1)
        keep = _torch_nms(boxes + offsets[:, None], scores, nms_thresh)
    keep = keep[:detections_per_img]
    return boxes[keep], scores[keep], labels[keep]
