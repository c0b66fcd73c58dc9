"""FLOPs of one SIW generator forward and of one SOF march, counted from the layer shapes.

What is counted: every multiply-add of the layers that are matrix products or convolutions, as
the implementation of the start of issue 21 computes them (``benchmarks/reference/``), at 2 FLOPs
per multiply-add; the count is fixed by the model, so a faster implementation shows as a higher
fraction of the peak, even where it does less arithmetic. That is the work a roofline
compares with the machine's matmul rate. Element-wise work (bias, activations, noise, the
per-channel modulation/demodulation scaling, LayerNorm, PixelNorm, bilinear resizes, the one-hot)
is not counted: it costs memory traffic, not arithmetic, and is what separates a layer from the
matmul peak.

SIW generator (:class:`sofgan_lab.texture.SIWGenerator`), per call of ``batch`` samples with
``styles`` = K styles each (``mode`` "exact" or "fast"); ``C_r`` is the width at resolution r:

* mapping: ``n_mlp`` linears D→D per style row: ``N·K·n_mlp·2D²``;
* modulation: one linear D→in per modulated conv (ToRGB included) per style: ``N·K·2·D·in``;
  demodulation ``σ² @ (Σ w²)ᵀ``: ``N·K·2·in·out`` per demodulated conv;
* segmap encoder: 3 residual blocks at 32², 16², 8² (in→out), each a 3×3 conv in→in at r², a
  4×4 depthwise blur on in channels at (r+1)² then a 3×3 stride-2 conv in→out at (r/2)², and a
  skip blur at (r−1)² then a 1×1 stride-2 conv at (r/2)²;
* synthesis, per modulated 3×3 conv: ``2·in·out·9·r²`` (an upsampling conv is a stride-2 transposed
  conv: ``2·in·out·9·(r/2)²`` over its input, then a 4×4 depthwise blur, ``2·16·out·r²``); in
  "exact" mode with K > 1 each conv and blur runs once per style and the K outputs are blended
  (``2·K·out·r²``), after the region map is made from the class weights once
  (``2·N·17·K·cs²``, ``cs`` the condition size); in "fast" mode the conv runs once and one bmm per layer blends the modulation
  and demodulation maps (``2·K·(in + out)·r_in²``);
* SPADE at ``spade_min``..``spade_max``: 3×3 convs 17→hidden, hidden→C (γ) and hidden→C (β) at r²;
* ToRGB: a 1×1 conv C→3 at r² (one conv for any K: it is linear in the modulation; with K > 1 its
  blend bmm ``2·K·C·r²``), and the 2× FIR upsampling of the 3-channel skip, computed as a 4×4
  depthwise convolution over the zero-inserted image: ``2·16·3·r²``.

SOF (:class:`sofgan_lab.geometry.SemanticOccupancyField`), per marched ray (``P`` = phi_dim,
``M`` = marcher_dim, ``Q`` = classifier_dim): Θ is ``2·(3P + (phi_layers − 1)·P²)``; one marcher
step is Θ plus ``2·(P·M + (marcher_layers − 2)·M² + M)``; the direction biases, once per ray,
``2·3·((marcher_layers − 1)·M + 1)``; the classifier at the final point is Θ plus
``2·(P·Q + (classifier_layers − 1)·Q² + Q·num_classes)``. The hypernetwork, once per latent, is
``2·(D·H + H² + H·(fan_in·fan_out + fan_out))`` per Θ layer (``D`` latent_dim, ``H`` hyper_dim).

``tests/test_benchmarks.py`` checks these counts against ``torch.utils.flop_counter`` run over the
reference models (small sizes).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SIWFlops", "siw_flops", "sof_ray_flops", "sof_hyper_flops"]

_BLUR_TAPS = 16  # the 4x4 FIR [1, 3, 3, 1] (outer product)


@dataclass(frozen=True)
class SIWFlops:
    """FLOPs of one SIW forward by part (all for the whole batch)."""

    mapping: int
    modulation: int
    encoder: int
    convs: int
    blur: int
    spade: int
    to_rgb: int
    blend: int

    @property
    def total(self) -> int:
        return (self.mapping + self.modulation + self.encoder + self.convs + self.blur + self.spade
                + self.to_rgb + self.blend)


def siw_flops(config, batch: int = 1, styles: int = 1, mode: str = "exact") -> SIWFlops:
    """FLOPs of ``SIWGenerator(config)(segmap, z)`` for ``batch`` samples of ``styles`` styles each
    (z given, no truncation), by part; see the module docstring."""
    if mode not in ("exact", "fast"):
        raise ValueError(f"mode: expected 'exact' or 'fast', got {mode!r}")
    n, k = int(batch), int(styles)
    d = config.style_dim
    ch = config.channels
    mapping = n * k * config.n_mlp * 2 * d * d
    modulation = conv = blur = spade = rgb = blend = 0
    per_style = k if (k > 1 and mode == "exact") else 1
    if k > 1:  # the region map from class weights: onehot [N, 17, cs²] x weights [N, 17, K]
        blend += n * 2 * config.num_classes * k * config.condition_size ** 2

    def modconv(cin: int, cout: int, r: int, up: bool, demod: bool = True, ksize: int = 3) -> None:
        """Add one modulated conv producing ``cout`` channels at ``r``² to the counts."""
        nonlocal modulation, conv, blur, blend, rgb
        modulation += n * k * 2 * d * cin
        if demod:
            modulation += n * k * 2 * cin * cout
        r_in = r // 2 if up else r
        if ksize == 1:  # ToRGB: one conv for any K (the blend is exact in the modulation)
            rgb += n * 2 * cin * cout * r * r
            if k > 1:
                blend += n * 2 * k * cin * r * r
            return
        c = n * per_style * 2 * cin * cout * ksize * ksize * r_in * r_in
        conv += c
        if up:
            blur += n * per_style * 2 * _BLUR_TAPS * cout * r * r
        if k > 1:
            if mode == "exact":
                blend += n * 2 * k * cout * r * r
            else:
                blend += n * 2 * k * (cin + cout) * r_in * r_in

    # segmap encoder: ResBlocks at 32, 16, 8
    enc = (config.num_classes,) + tuple(config.encoder_channels)
    encoder = 0
    r = 32
    for i in range(3):
        cin, cout = enc[i], enc[i + 1]
        encoder += n * 2 * cin * cin * 9 * r * r                       # conv1 3x3
        encoder += n * 2 * _BLUR_TAPS * cin * (r + 1) ** 2               # conv2's blur
        encoder += n * 2 * cin * cout * 9 * (r // 2) ** 2                # conv2 3x3 stride 2
        encoder += n * 2 * _BLUR_TAPS * cin * (r - 1) ** 2               # skip's blur
        encoder += n * 2 * cin * cout * (r // 2) ** 2                    # skip 1x1 stride 2
        r //= 2

    modconv(enc[-1], ch[4], 4, up=False)
    modconv(ch[4], 3, 4, up=False, demod=False, ksize=1)
    cin = ch[4]
    for i in range(3, config.log_size + 1):
        r = 2 ** i
        cout = ch[r]
        modconv(cin, cout, r, up=True)
        if config.uses_spade(r):
            h = config.spade_hidden
            spade += n * 2 * 9 * r * r * (config.num_classes * h + 2 * h * cout)
        modconv(cout, cout, r, up=False)
        modconv(cout, 3, r, up=False, demod=False, ksize=1)
        rgb += n * 2 * _BLUR_TAPS * 3 * r * r                            # skip upsampling
        cin = cout
    return SIWFlops(mapping=mapping, modulation=modulation, encoder=encoder, convs=conv, blur=blur, spade=spade,
                    to_rgb=rgb, blend=blend)


def sof_ray_flops(config, steps: int | None = None) -> int:
    """FLOPs of marching and classifying one ray (``steps`` marcher steps; None: the config's)."""
    s = config.march_steps if steps is None else int(steps)
    p, m, q = config.phi_dim, config.marcher_dim, config.classifier_dim
    phi = 2 * (3 * p + (config.phi_layers - 1) * p * p)
    if config.marcher_layers == 1:
        marcher = 2 * p
        biases = 2 * 3 * 1
    else:
        marcher = 2 * (p * m + (config.marcher_layers - 2) * m * m + m)
        biases = 2 * 3 * ((config.marcher_layers - 1) * m + 1)
    classifier = 2 * (p * q + (config.classifier_layers - 1) * q * q + q * config.num_classes)
    return s * (phi + marcher) + biases + phi + classifier


def sof_hyper_flops(config) -> int:
    """FLOPs of the hypernetwork for one latent (Θ's weights)."""
    dims = [3] + [config.phi_dim] * config.phi_layers
    d, h = config.latent_dim, config.hyper_dim
    return sum(2 * (d * h + h * h + h * (dims[i] * dims[i + 1] + dims[i + 1])) for i in range(config.phi_layers))
