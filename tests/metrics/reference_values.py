#!/usr/bin/python3
"""Independent NumPy re-implementation of timfusion's metrics, transcribed from the
MATLAB sources (VIFB metrics/*.m; Tang et al.'s analysis_SCD.m, vifp_mscale.m,
analysis_nabf.m), used once to produce the constants in test_reference_values.cpp.

It shares no code with the C++ library: filtering uses NumPy sliding windows and
np.pad, the frequency-domain filters use np.fft with fftshift/ifftshift as MATLAB
does, and MATLAB's gradient is np.gradient. Run with Debian's python3-numpy:
    /usr/bin/python3 tests/metrics/reference_values.py
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view as windows

H, W = 51, 64  # odd rows, even columns: both freqspace cases


def test_images():
    """The integer patterns test_reference_values.cpp builds (uint8, H x W)."""
    i, j = np.mgrid[0:H, 0:W]
    ir = (40 + 3 * i + 2 * j + ((i * j) % 7) * 9) % 256
    vis = (200 - 2 * i + j + ((i + 2 * j) % 5) * 12 + np.where(j > 30, 40, 0)) % 256
    fused = np.clip((ir + vis) // 2 * 5 // 4 - 32 + (3 * i + j) % 4, 0, 255)
    # Colour versions, channels in R, G, B order.
    vis_rgb = np.stack([vis, (vis + 5 * i) % 256, (vis // 2 + 3 * j) % 256], -1)
    fused_rgb = np.stack([fused, (fused + 7) % 256, (fused * 3 // 4 + i) % 256], -1)
    return [a.astype(np.uint8) for a in (ir, vis, fused, vis_rgb, fused_rgb)]


def mround(x):
    """MATLAB round (and int16()): halves away from zero; np.round rounds them to even."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def rgb2gray(rgb):
    c = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return mround(rgb.astype(float) @ c)


def corr(x, k):  # filter2(k, x, 'valid')
    return np.einsum('ijkl,kl->ij', windows(x, k.shape), k)


def corr_same(x, k, mode='constant'):  # filter2 / imfilter 'same'
    r0, r1 = k.shape[0] // 2, k.shape[1] // 2
    return corr(np.pad(x, ((r0, r0), (r1, r1)), mode=mode), k)


def fspecial_gaussian(n, sigma):
    x = np.arange(n) - (n - 1) / 2
    h = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma * sigma))
    h[h < np.finfo(float).eps * h.max()] = 0
    return h / h.sum()


def en(F):
    p = np.bincount(np.floor(F).astype(int).ravel(), minlength=256) / F.size
    p = p[p > 0]
    return -np.sum(p * np.log2(p))


def sd(F):
    return np.sqrt(np.sum((F - F.mean()) ** 2) / F.size)


def sf(F):
    m, n = F.shape
    return np.sqrt(np.sum(np.diff(F, axis=1) ** 2) / (m * n) + np.sum(np.diff(F, axis=0) ** 2) / (m * n))


def ag(F):
    gy, gx = np.gradient(F)
    r, c = F.shape
    return np.sum(np.sqrt((gx ** 2 + gy ** 2) / 2)) / ((r - 1) * (c - 1))


def ei(F):
    w = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)
    gx, gy = corr_same(F, w, 'edge'), corr_same(F, w.T, 'edge')
    return np.mean(np.sqrt(gx ** 2 + gy ** 2))


def mutinf(a, b):
    def norm(x):
        if x.max() == x.min():
            return np.zeros(x.shape, int)
        return mround((x - x.min()) / (x.max() - x.min()) * 255).astype(int)
    ia, ib = norm(a).ravel(), norm(b).ravel()
    hab = np.zeros((256, 256))
    np.add.at(hab, (ia, ib), 1)
    def h(c):
        p = c[c > 0] / c.sum()
        return -np.sum(p * np.log(p))
    return h(hab.sum(1)) + h(hab.sum(0)) - h(hab)


def mi(V, I, F):
    return mutinf(V, F) + mutinf(I, F)


def ce(V, I, F):
    def kl(s, f):
        p1 = np.bincount(s.astype(int).ravel(), minlength=256) / s.size
        p2 = np.bincount(f.astype(int).ravel(), minlength=256) / s.size
        m = (p1 != 0) & (p2 != 0)
        return np.sum(p1[m] * np.log2(p1[m] / p2[m]))
    return (kl(V, F) + kl(I, F)) / 2


def corr2(a, b):
    a, b = a - a.mean(), b - b.mean()
    return np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b))


def scd(V, I, F):
    return corr2(F - V, I) + corr2(F - I, V)


def ssim1(a, b):
    w = fspecial_gaussian(11, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ua, ub = corr(a, w), corr(b, w)
    saa, sbb, sab = corr(a * a, w) - ua * ua, corr(b * b, w) - ub * ub, corr(a * b, w) - ua * ub
    return np.mean(((2 * ua * ub + c1) * (2 * sab + c2)) / ((ua * ua + ub * ub + c1) * (saa + sbb + c2)))


def ssim(V, I, F):
    return ssim1(V, F) + ssim1(I, F)


def vifp(ref, dist):
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = fspecial_gaussian(n, n / 5)
        if scale > 1:
            ref, dist = corr(ref, win)[::2, ::2], corr(dist, win)[::2, ::2]
        mu1, mu2 = corr(ref, win), corr(dist, win)
        s1 = corr(ref * ref, win) - mu1 * mu1
        s2 = corr(dist * dist, win) - mu2 * mu2
        s12 = corr(ref * dist, win) - mu1 * mu2
        s1[s1 < 0] = 0
        s2[s2 < 0] = 0
        g = s12 / (s1 + 1e-10)
        sv = s2 - g * s12
        m = s1 < 1e-10
        g[m] = 0
        sv[m] = s2[m]
        s1[m] = 0
        m = s2 < 1e-10
        g[m] = 0
        sv[m] = 0
        m = g < 0
        sv[m] = s2[m]
        g[m] = 0
        sv[sv <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g ** 2 * s1 / (sv + 2)))
        den += np.sum(np.log10(1 + s1 / 2))
    return num / den


def vif(V, I, F):
    return vifp(I, F) + vifp(V, F)


def conv2_same(x, h):  # MATLAB conv2(x, h, 'same'), zero padding
    return corr_same(x, h[::-1, ::-1])


def qabf1(A, B, F):
    Tg, kg, Dg, Ta, ka, Da = 0.9994, -15, 0.5, 0.9879, -22, 0.8
    h1 = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], float)
    h3 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    def edges(x):
        x = 255 * x
        sx, sy = conv2_same(x, h3), conv2_same(x, h1)
        with np.errstate(divide='ignore', invalid='ignore'):
            a = np.where(sx == 0, np.pi / 2, np.arctan(sy / sx))
        return np.sqrt(sx ** 2 + sy ** 2), a
    (gA, aA), (gB, aB), (gF, aF) = edges(A), edges(B), edges(F)
    def q(g, a):
        with np.errstate(divide='ignore', invalid='ignore'):
            G = np.where(g > gF, gF / g, np.where(g == gF, gF, g / gF))
        Aa = 1 - np.abs(a - aF) / (np.pi / 2)
        return Tg / (1 + np.exp(kg * (G - Dg))) * Ta / (1 + np.exp(ka * (Aa - Da)))
    return np.sum(q(gA, aA) * gA + q(gB, aB) * gB) / np.sum(gA + gB)


def qabf(V, I, F):
    return qabf1(V, I, F)


def nabf(V, I, F):
    vt = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8
    ht = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]) / 8
    def edges(x):
        gv, gh = corr_same(x, vt, 'reflect'), corr_same(x, ht, 'reflect')
        with np.errstate(divide='ignore', invalid='ignore'):
            a = np.where((gv == 0) & (gh == 0), 0, np.arctan(gv / gh))
        return np.sqrt(gh ** 2 + gv ** 2), a
    (gA, aA), (gB, aB), (gF, aF) = edges(I), edges(V), edges(F)
    def q(g, a):
        with np.errstate(divide='ignore', invalid='ignore'):
            G = np.where((g == 0) | (gF == 0), 0, np.where(g > gF, gF / g, g / gF))
        Aa = np.abs(np.abs(a - aF) - np.pi / 2) * 2 / np.pi
        return np.sqrt(0.9999 / (1 + np.exp(-19 * (G - 0.5))) * 0.9995 / (1 + np.exp(-22 * (Aa - 0.5))))
    QA, QB = q(gA, aA), q(gB, aB)
    wA = np.where(gA >= 2, gA ** 1.5, 0.001)
    wB = np.where(gB >= 2, gB ** 1.5, 0.001)
    na = (gF > gA) & (gF > gB)
    return np.sum(na * ((1 - QA) * wA + (1 - QB) * wB)) / np.sum(wA + wB)


def normalize1(x):
    if x.max() == 0 and x.min() == 0:
        return x
    return mround((x - x.min()) / (x.max() - x.min()) * 255)


def freqspace(shape):
    def f(n):
        return (np.arange(n) - np.floor(n / 2)) * (2 / n)
    return np.meshgrid(f(shape[1]), f(shape[0]))


def ffilter(x, Hm):
    return np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(x)) * Hm))


def qcb(V, I, F):
    im1, im2, fu = normalize1(V), normalize1(I), normalize1(F)
    hang, lie = im1.shape
    u, v = freqspace(im1.shape)
    u, v = lie / 30 * u, hang / 30 * v
    r = np.sqrt(u ** 2 + v ** 2)
    Sd = np.exp(-(r / 15.3870) ** 2) - 0.7622 * np.exp(-(r / 1.3456) ** 2)
    x, y = np.meshgrid(np.arange(-15, 16), np.arange(-15, 16))
    def G(s):
        return np.exp(-(x * x + y * y) / (2 * s * s)) / (2 * np.pi * s * s)
    def contrast(im):
        im = ffilter(im, Sd)
        c = np.abs(corr_same(im, G(2)) / corr_same(im, G(4)) - 1)
        return c ** 3 / (c ** 2 + 0.0001)
    C1, C2, Cf = contrast(im1), contrast(im2), contrast(fu)
    def pres(a, b):
        m = (a < b).astype(float)
        return (a / b) * m + (b / a) * (1 - m)
    l1 = C1 * C1 / (C1 * C1 + C2 * C2)
    l2 = C2 * C2 / (C1 * C1 + C2 * C2)
    return np.mean(l1 * pres(C1, Cf) + l2 * pres(C2, Cf))


def blk(x, fun):
    b = 16
    p = np.pad(x, ((0, -x.shape[0] % b), (0, -x.shape[1] % b)))
    return np.array([[fun(p[i:i + b, j:j + b]) for j in range(0, p.shape[1], b)]
                     for i in range(0, p.shape[0], b)])


def qcv(V, I, F):
    im1, im2, fu = normalize1(V), normalize1(I), normalize1(F)
    f1 = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    f2 = np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], float)
    def grad(x):
        return np.sqrt(corr_same(x, f1) ** 2 + corr_same(x, f2) ** 2)
    r1 = blk(grad(im1), lambda x: np.sum(x ** 5))
    r2 = blk(grad(im2), lambda x: np.sum(x ** 5))
    hang, lie = im1.shape
    u, v = freqspace(im1.shape)
    u, v = lie / 8 * u, hang / 8 * v
    r = np.sqrt(u ** 2 + v ** 2)
    tm = 2.6 * (0.0192 + 0.144 * r) * np.exp(-(0.144 * r) ** 1.1)
    D1 = blk(ffilter(im1 - fu, tm), lambda x: np.mean(x ** 2))
    D2 = blk(ffilter(im2 - fu, tm), lambda x: np.mean(x ** 2))
    return np.real(np.sum(r1 * D1 + r2 * D2) / np.sum(r1 + r2))


def mse_vifb(a, b):
    return np.sqrt(np.sum((a - b) ** 2)) / a.size


def rmse_vifb(V, I, F):
    return (mse_vifb(V, F) + mse_vifb(I, F)) / 2


def psnr_vifb(V, I, F):
    return 20 * np.log10(255 / np.sqrt(rmse_vifb(V, I, F)))


def mse(V, I, F):
    return (np.mean((V - F) ** 2) + np.mean((I - F) ** 2)) / 2


METRICS = {
    'en': lambda V, I, F: en(F), 'sd': lambda V, I, F: sd(F), 'sf': lambda V, I, F: sf(F),
    'ag': lambda V, I, F: ag(F), 'mi': mi, 'scd': scd, 'vif': vif, 'qabf': qabf, 'nabf': nabf,
    'ssim': ssim, 'ce': ce, 'ei': lambda V, I, F: ei(F), 'qcb': qcb, 'qcv': qcv,
    'psnr_vifb': psnr_vifb, 'rmse_vifb': rmse_vifb,
    'psnr': lambda V, I, F: 10 * np.log10(255 ** 2 / mse(V, I, F)),
    'rmse': lambda V, I, F: np.sqrt(mse(V, I, F)),
}


def per_channel(name, I, Vrgb, Frgb):
    """VIFB's colour loop: fused channel k against visible channel k and the gray IR."""
    if name == 'sf':  # size() folds the channels into columns: one SF over R|G|B
        return sf(np.concatenate([Frgb[..., k] for k in range(3)], axis=1))
    return np.mean([METRICS[name](Vrgb[..., k], I, Frgb[..., k]) for k in range(3)])


if __name__ == '__main__':
    ir, vis, fused, vis_rgb, fused_rgb = [a.astype(float) for a in test_images()]
    print('// gray: {name, value}')
    for name, fn in METRICS.items():
        print('    {"%s", %.12g},' % (name, fn(vis, ir, fused)))
    print('// colour, per-channel')
    for name in METRICS:
        print('    {"%s", %.12g},' % (name, per_channel(name, ir, vis_rgb, fused_rgb)))
    print('// colour, luma')
    for name, fn in METRICS.items():
        print('    {"%s", %.12g},' % (name, fn(rgb2gray(vis_rgb), ir, rgb2gray(fused_rgb))))
