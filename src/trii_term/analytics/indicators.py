"""Technical indicators on polars Series: TA-Lib's numbers (to ≤ 1e-9), at TA-Lib-like speed.

Every function takes polars Series (float or integer, nulls and NaN allowed) and returns Float64
Series of the same length, null (never NaN) where the indicator is undefined. Input shorter than
the lookback gives all nulls, not an error; a bad parameter raises ValueError naming the range.

Conventions (TA-Lib 0.6+/0.8, `matype=0` everywhere; checked value for value in the tests):

- SMA(n): mean of the last n; first value at index n−1.  WMA(n): weights 1..n, newest heaviest.
- EMA(n): k = 2/(n+1); the value at index n−1 is the SMA of the first n, then the recursion.
- RSI(n): first value at index n. The average gain and loss start as the plain means of the first
  n changes, then Wilder-smooth (α = 1/n). RSI = 100·G/(G+L), and 0 when G+L is 0 (a flat series).
- MACD(fast, slow, signal): both EMAs are seeded at index slow−1, the slow one with the SMA of bars
  0..slow−1 and the fast one with the SMA of the `fast` bars ending there (bars slow−fast..slow−1);
  the signal is the EMA of MACD seeded with the mean of its first `signal` values. All three
  outputs start at slow+signal−2; hist = macd − signal. TA-Lib silently swaps fast > slow (and
  then labels EMA(slow)−EMA(fast) as the MACD); here that raises ValueError instead.
- Bollinger(n, k): middle = SMA(n), bands = middle ± k·(population std, ddof = 0).
- Stochastic (slow, SMA smoothing): fast %K = 100·(close − LL)/(HH − LL) over k bars, 0 when the
  range is zero within TA-Lib's scaled epsilon (|HH−LL| ≤ 1e-14·(|HH|+|LL|)); slow %K = SMA of it,
  %D = SMA of slow %K. Both outputs start at k+k_smooth+d−3, as TA-Lib's do.
- ATR(n): true range needs the previous close, so it starts at index 1; the first ATR (index n) is
  the mean of TR[1..n], then Wilder smoothing. ATR(1) is the true range.
- OBV: starts at volume[0] and adds or subtracts each volume as the close rises or falls.
- VWAP (no TA-Lib equivalent): cumulative Σ(typical price·volume)/Σvolume with typical price
  (h+l+c)/3, restarted for each `day` label (rows sharing a label accumulate in row order), null
  while the cumulative volume is 0.

Missing values. Null, NaN and ±inf all count as missing; a bar is missing when any of its inputs
is. Leading missing bars are skipped exactly as TA-Lib skips leading NaN: the first value comes
`lookback` bars after the first complete bar. Interior missing bars:

- windowed indicators (sma, wma, bollinger, stoch) are null while their window contains a missing
  bar (for stoch the whole k+k_smooth+d−2 span behind both outputs);
- recursive and cumulative ones (ema, rsi, macd, atr, obv, vwap) are null at the missing bar and
  carry their state across it: the bar is dropped, so the next change (RSI, OBV) or true range is
  measured from the last complete bar and one bad print does not blank the next 30 bars. This is
  the same as computing on the series with the missing bars removed and putting the results back.

TA-Lib itself lets an interior NaN poison every later value (or the next n), so results differ
from it only there.

How it is fast (numpy + polars only, no threads of our own; BLAS matrix products do the heavy work):

- Inputs are read zero-copy (Float64 without nulls) and worked through in chunks of 32k values, so
  nothing full-length is allocated but the outputs. The fast path is optimistic: a NaN or inf is
  caught on the way (a sum over data already in cache, or a recursion's final state, which any
  NaN reaches) and only then are the missing bars located and the slow path run.
- Window sums (SMA, slow %K/%D) by doubling, ⌊log2 n⌋ + popcount(n) − 1 vector adds summed pairwise:
  no running sum, no drift. HH/LL by a sparse table (⌊log2 k⌋ + 1 max/min). Bollinger variance by
  the same doubling with Chan's merge of (sum, squared deviations): no E[x²] − E[x]² cancellation.
- Recursions (EMA, Wilder's RSI/ATR smoothing, MACD) by blocks of 16: one matrix product applies the
  recursion to every block at once, given the state entering each block; those states are the
  same recursion over the blocks' end values (1/16 as long), solved the same way with blocks of 64.
  MACD's two EMAs share one product (the difference of their matrices) after the seed.
- WMA by blocks too, from its second difference, restarted at every block from the exact
  numerator and window sum there (computed from per-block sums): nothing drifts.
- OBV is one cumulative sum in TA-Lib's order (bit-identical); VWAP is polars' cumulative sums.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Iterator

import numpy as np
import polars as pl

__all__ = ["atr", "bollinger", "ema", "macd", "obv", "rsi", "sma", "stoch", "vwap", "wma"]

_L = 16  # block length of the matrix kernels
_CHUNK = 32768  # values per chunk
_ROWS = _CHUNK // _L  # blocks per chunk
_LOOP = 64  # a recursion this short is one matrix-vector product
_EPS = 1e-14  # TA-Lib's TA_EPSILON (STOCH's scaled zero test)
_TINY = 1e-290  # smaller powers of a decay are flushed to 0
_NAN = float("nan")


# ---------------------------------------------------------------- inputs, outputs, missing values

Core = Callable[..., "list[np.ndarray] | None"]


def _period(fn: str, name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{fn}: {name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{fn}: {name} must be >= {minimum}, got {value}")
    return int(value)


def _arrays(fn: str, *series: pl.Series) -> tuple[list[np.ndarray], bool]:
    """Float64 arrays of the inputs (zero-copy for Float64 without nulls) and whether any has nulls."""
    lengths = []
    for s in series:
        if not isinstance(s, pl.Series):
            raise TypeError(f"{fn}: expected polars Series, got {type(s).__name__}")
        if not s.dtype.is_numeric():
            raise TypeError(f"{fn}: expected a numeric Series, got {s.name!r} of type {s.dtype}")
        lengths.append(s.len())
    if len(set(lengths)) > 1:
        raise ValueError(f"{fn}: the input Series must have the same length, got {lengths}")
    return [s.cast(pl.Float64).to_numpy() for s in series], any(s.null_count() for s in series)


def _finite(a: np.ndarray) -> bool:
    """No NaN or inf in a (one vector sum; run on data already in cache)."""
    return bool(np.isfinite(np.add.reduce(a, axis=None)))


def _complete(arrays: list[np.ndarray]) -> np.ndarray:
    return np.logical_and.reduce([np.isfinite(a) for a in arrays])


def _recursive(core: Core, arrays: list[np.ndarray], nulls: bool) -> list[np.ndarray]:
    """`core` on the complete bars only, results put back in place (NaN elsewhere).

    Cores are optimistic: with check=True they return None when they met a NaN or inf."""
    with np.errstate(all="ignore"):
        if not nulls:
            outs = core(*arrays, check=True)
            if outs is not None:
                return outs
        valid = _complete(arrays)
        if valid.all():  # only a sum overflowed
            return core(*arrays, check=False)
        idx = np.flatnonzero(valid)
        outs = []
        for r in core(*(a[idx] for a in arrays), check=False):
            full = np.full(valid.size, _NAN)
            full[idx] = r
            outs.append(full)
        return outs


def _windowed(core: Core, arrays: list[np.ndarray], nulls: bool, span: int) -> list[np.ndarray]:
    """`core` with missing values zeroed, then NaN wherever the span+1 bars ending there had one."""
    with np.errstate(all="ignore"):
        if not nulls:
            outs = core(*arrays, check=True)
            if outs is not None:
                return outs
        valid = _complete(arrays)
        if valid.all():
            return core(*arrays, check=False)
        outs = core(*(np.where(valid, a, 0.0) for a in arrays), check=False)
    count = np.cumsum(~valid, dtype=np.int64)
    touched = count.copy()
    touched[span + 1 :] -= count[: -span - 1]
    bad = touched > 0
    for o in outs:
        o[bad] = _NAN
    return outs


def _series(name: str, values: np.ndarray) -> pl.Series:
    return pl.Series(name, values, dtype=pl.Float64, nan_to_null=True)


def _nans(n: int) -> np.ndarray:
    return np.full(n, _NAN)


def _alloc(m: int) -> np.ndarray:
    """A flat buffer padded to whole blocks (results are its first m values)."""
    return np.empty(-(-m // _L) * _L)


def _seg(x: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """x[lo:hi], zero outside 0..len(x) (copies only then)."""
    if lo >= 0 and hi <= x.size:
        return x[lo:hi]
    out = np.zeros(hi - lo)
    a, b = max(lo, 0), min(hi, x.size)
    if a < b:
        out[a - lo : b - lo] = x[a:b]
    return out


def _spans(first: int, m: int, step: int = _CHUNK) -> Iterator[tuple[int, int]]:
    for lo in range(first, m, step):
        yield lo, min(lo + step, m)


# ---------------------------------------------------------------- window kernels (doubling)


def _wsum(a: np.ndarray, n: int) -> np.ndarray:
    """Sums of n consecutive values, r[i] = a[i] + … + a[i+n−1]: len(a) − n + 1 values."""
    size = a.size - n + 1
    acc: np.ndarray | None = None
    done, p, k = 0, a, 1  # p[i] = a[i] + … + a[i+k−1]
    while True:
        if n & k:
            off = n - done - k  # this power covers the k values just older than the `done` newest
            block = p[off : off + size]
            acc = block if acc is None else acc + block
            done += k
        if 2 * k > n:
            assert acc is not None
            return acc
        p = p[:-k] + p[k:]
        k *= 2


def _wnum(a: np.ndarray, n: int) -> np.ndarray:
    """WMA numerators of n consecutive values, Σ_j (j+1)·a[i+j] (newest heaviest): len(a) − n + 1 values."""
    if n <= 16:
        return np.correlate(a, np.arange(1.0, n + 1.0), "valid")
    size = a.size - n + 1
    acc_s: np.ndarray | None = None
    acc_t: np.ndarray | None = None
    done, ps, pt, k = 0, a, a, 1  # ps: sums of k values; pt: their numerators (weights 1..k)
    while True:
        if n & k:
            off = n - done - k
            bs, bt = ps[off : off + size], pt[off : off + size]
            if acc_s is None:
                acc_s, acc_t = bs, bt
            else:  # the newer `done` values weigh k more once the k older ones are in front of them
                assert acc_t is not None
                acc_t = bt + acc_t + k * acc_s
                acc_s = acc_s + bs
            done += k
        if 2 * k > n:
            assert acc_t is not None
            return acc_t
        pt = pt[:-k] + pt[k:] + k * ps[k:]
        ps = ps[:-k] + ps[k:]
        k *= 2


def _wext(a: np.ndarray, n: int, op: np.ufunc) -> np.ndarray:
    """Max or min (op) of n consecutive values: a sparse table, two overlapping powers of two at the end."""
    size = a.size - n + 1
    p, k = a, 1
    while 2 * k <= n:
        p = op(p[:-k], p[k:])
        k *= 2
    return p[:size] if k == n else op(p[:size], p[n - k : n - k + size])


def _wvar(a: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Sums S and sums of squared deviations Q of n consecutive values (n ≥ 2).

    Doubling as in `_wsum`, merging (S, Q) pairs with Chan's update Q = Qa + Qb + δ²·na·nb/(na+nb),
    δ the difference of the two means: every term is ≥ 0, so there is no cancellation.
    """
    size = a.size - n + 1
    acc_s: np.ndarray | None = None
    acc_q: np.ndarray | None = None
    done, ps, pq, k = 0, a, None, 1
    while True:
        if n & k:
            off = n - done - k
            bs = ps[off : off + size]
            bq = None if pq is None else pq[off : off + size]
            if acc_s is None:
                acc_s, acc_q = bs, bq
            else:
                delta = acc_s * (1.0 / done) - bs * (1.0 / k)
                q = delta * delta
                q *= done * k / (done + k)
                if acc_q is not None:
                    q += acc_q
                if bq is not None:
                    q += bq
                acc_s, acc_q = acc_s + bs, q
            done += k
        if 2 * k > n:
            assert acc_s is not None and acc_q is not None
            return acc_s, acc_q
        old, new = ps[:-k], ps[k:]
        delta = new - old
        q = delta * delta
        q *= 1.0 / (2 * k)
        if pq is not None:
            q += pq[:-k]
            q += pq[k:]
        ps, pq = old + new, q
        k *= 2


# ---------------------------------------------------------------- first-order recursions (blocks)


@functools.lru_cache(maxsize=128)
def _iir_matrix(b: float, g: float, size: int = _L) -> np.ndarray:
    """(size+1)×size map of one block: row i < size spreads input i to outputs j ≥ i with g·b^(j−i);
    the last row spreads the state carried in with b^(j+1). So y[t] = b·y[t−1] + g·z[t], a block at once."""
    pw = b ** np.arange(size + 1, dtype=np.float64)
    pw[pw < _TINY] = 0.0  # subnormal products are ~100× slower and below any tolerance
    m = np.zeros((size + 1, size))
    for i in range(size):
        m[i, i:] = g * pw[: size - i]
    m[size] = pw[1:]
    m.flags.writeable = False
    return m


@functools.lru_cache(maxsize=128)
def _decay_matrix(b: float, g: float) -> np.ndarray:
    """64×64 lower-triangular g·b^(i−j): the recursion over up to 64 values as one product."""
    i, j = np.arange(_LOOP)[:, None], np.arange(_LOOP)[None, :]
    pw = b ** np.maximum(i - j, 0).astype(np.float64)
    pw[pw < _TINY] = 0.0
    m = np.where(i >= j, g * pw, 0.0)
    m.flags.writeable = False
    return m


def _rec(z: np.ndarray, b: float, g: float) -> np.ndarray:
    """y[t] = b·y[t−1] + g·z[t] from y[−1] = 0 along the last axis of z (k × m), for the block-end
    levels: blocks of 64 from a zero start (one product), their true end states (the same problem,
    64 times shorter), then the state carried into each block added as b^(j+1)·state."""
    k, m = z.shape
    if m <= _LOOP:
        return z @ _decay_matrix(b, g)[:m, :m].T
    rows = -(-m // _LOOP)
    if m != rows * _LOOP:
        z = np.concatenate([z, np.zeros((k, rows * _LOOP - m))], axis=1)
    mat = _iir_matrix(b, g, _LOOP)
    local = (z.reshape(k * rows, _LOOP) @ mat[:_LOOP]).reshape(k, rows, _LOOP)
    state = _rec(local[:, :, -1], float(mat[_LOOP, _LOOP - 1]), 1.0)
    local[:, 1:] += state[:, :-1, None] * mat[_LOOP]
    return local.reshape(k, rows * _LOOP)[:, :m]


class _Plan:
    """Everything `_Recursion` needs for one (b, g), computed once (`_plan` caches them)."""

    __slots__ = ("carry64", "decay", "end", "mat", "sees_all", "top64", "up")

    def __init__(self, b: float, g: float) -> None:
        self.mat = _iir_matrix(b, g)
        self.end = np.ascontiguousarray(self.mat[:_L, _L - 1])
        self.sees_all = bool((self.end > 0).all())  # every input reaches its block's end value
        self.decay = float(self.mat[_L, _L - 1])  # b^16: one block's decay
        # The block-end level of a whole chunk (_ROWS = 64·r values) as in `_rec`, matrices at hand.
        level = _iir_matrix(self.decay, 1.0, _LOOP)
        self.top64, self.carry64 = np.ascontiguousarray(level[:_LOOP]), level[_LOOP]
        r = _ROWS // _LOOP
        self.up = np.ascontiguousarray(_decay_matrix(float(level[_LOOP, _LOOP - 1]), 1.0)[:r, :r].T)
        for a in (self.end, self.top64, self.up):
            a.flags.writeable = False


@functools.lru_cache(maxsize=64)
def _plan(b: float, g: float) -> _Plan:
    return _Plan(b, g)


class _Recursion:
    """y[t] = b·y[t−1] + g·z[t] for t > p, from y[p] = seed, for k series at once (one seed each);
    fed chunk by chunk, in order.

    Per chunk: every 16-block's end value from a zero start (one matrix-vector product), the true
    block-end states from those (a recursion a 16th as long, plus the state carried in), each
    block's incoming state added into its first input (as b·state/g), then all values at once as
    blocks @ matrix. The seed enters as the input seed/g at p after zeros, so values before p are
    meaningless.
    """

    __slots__ = ("finite", "fold", "g", "p", "plan", "seeds", "state")

    def __init__(self, b: float, g: float, seeds: list[float], p: int) -> None:
        self.g, self.p = g, p
        self.seeds = np.asarray(seeds, dtype=np.float64)
        self.fold = b / g
        self.plan = _plan(b, g)
        self.state = np.zeros(self.seeds.size)
        self.finite = bool(np.isfinite(self.seeds).all())

    @property
    def mat(self) -> np.ndarray:
        return self.plan.mat

    @property
    def end(self) -> np.ndarray:
        return self.plan.end

    def blocks(self, z: np.ndarray, lo: int, copy: bool) -> np.ndarray:
        """The chunk z (k × size) as (k·rows) × 16 blocks: padded, the seed patched in, copied if asked."""
        k, size = z.shape
        nr = -(-size // _L)
        if lo <= self.p or size % _L:
            zz = np.zeros((k, nr * _L))
            zz[:, :size] = z
            if lo <= self.p:
                zz[:, : min(self.p, lo + size) - lo] = 0.0
                if self.p < lo + size:
                    zz[:, self.p - lo] = self.seeds / self.g
            z = zz
        elif copy:
            z = z.copy()
        return z.reshape(k * nr, _L)

    def advance(self, ends: np.ndarray, check: bool, z: np.ndarray | None = None) -> np.ndarray:
        """From the blocks' end values from zero (k × rows, overwritten): the state entering each
        block (k × rows); the state moves on to the chunk's end.

        A NaN or inf input reaches its block's end value (every weight is > 0) and from there every
        later state (0·NaN is NaN), so `ok` needs only the final state; inputs before p are zeroed,
        but they all lie in the seed's window. With b = 0 the inputs are checked as they come.
        """
        plan = self.plan
        if check and not plan.sees_all and z is not None and not _finite(z):
            self.finite = False
        before = self.state
        ends[:, 0] += plan.decay * before
        k, m = ends.shape
        if m == _ROWS:  # `_rec` unrolled for a whole chunk
            local = ends.reshape(-1, _LOOP) @ plan.top64
            ends64 = local[:, -1].reshape(k, -1) @ plan.up
            states = local.reshape(k, -1, _LOOP)
            states[:, 1:] += ends64[:, :-1, None] * plan.carry64
            states = states.reshape(k, m)
        else:
            states = _rec(ends, plan.decay, 1.0)
        self.state = states[:, -1].copy()
        return np.concatenate([before[:, None], states[:, :-1]], axis=1)

    @property
    def ok(self) -> bool:
        """No NaN or inf met so far (for an optimistic run with check=True)."""
        return self.finite and bool(np.isfinite(self.state).all())

    def feed(
        self, z: np.ndarray, lo: int, dest: np.ndarray, check: bool = False, own: bool = False
    ) -> np.ndarray:
        """Values at positions lo..lo+size−1 (lo a multiple of 16) of z (k × size) into dest
        (k × rows × 16, C-contiguous); returns them as k × size. own: z may be overwritten."""
        k, size = z.shape
        blocks = self.blocks(z, lo, copy=not own)
        nr = blocks.shape[0] // k
        incoming = self.advance((blocks @ self.plan.end).reshape(k, nr), check, z)
        if self.fold:
            incoming *= self.fold
            blocks[:, 0] += incoming.reshape(-1)
        np.matmul(blocks, self.plan.mat[:_L], out=dest.reshape(-1, _L))
        return dest.reshape(k, -1)[:, :size]


def _rows(buf: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The 16-wide rows of a flat `_alloc` buffer holding positions lo..hi−1 (lo a multiple of 16)."""
    return buf[lo : -(-hi // _L) * _L].reshape(-1, _L)


# ---------------------------------------------------------------- cores (float64 arrays in, NaN-padded out)


def _sma_core(x: np.ndarray, n: int, check: bool) -> list[np.ndarray] | None:
    out = np.empty(x.size)
    out[: n - 1] = _NAN
    for lo, hi in _spans(n - 1, x.size, max(_CHUNK, 4 * n)):
        seg = x[lo - n + 1 : hi]
        if check and not _finite(seg):
            return None
        np.divide(_wsum(seg, n), n, out=out[lo:hi])
    return [out]


def _wma_core(x: np.ndarray, n: int, check: bool) -> list[np.ndarray] | None:
    """TA-Lib WMA. The numerator N has second difference v[t] = n·x[t] − (n+1)·x[t−1] + x[t−n−1], so in
    a block of 16 N[j] = N_in + (j+1)·ΔN_in + Σ_{i≤j} (j−i+1)·v_i: one product, from the numerator and
    its step at the block start. Those come exact from per-block sums (a WMA and a window sum over
    blocks), not from the previous block: nothing is carried further than one block, nothing drifts."""
    size = x.size
    if size < n:
        return [_nans(size)]
    scale = 2.0 / (n * (n + 1.0))
    if n == 1 or size * n <= 1 << 16:
        out = np.convolve(x, np.arange(n, 0, -1.0) * scale)[:size]
        if check and not _finite(out):
            return None
        out[: n - 1] = _NAN
        return [out]
    q, rho = divmod(n, _L)
    # Per block: sum, first moment (weights 1..16), and both over its last rho values only.
    wst = np.zeros((_L, 4))
    wst[:, 0] = 1.0
    wst[:, 1] = np.arange(1, _L + 1)
    if rho:
        wst[_L - rho :, 2] = 1.0
        wst[_L - rho :, 3] = np.arange(1, rho + 1)
    i, j = np.arange(_L)[:, None], np.arange(_L)[None, :]
    ramp = np.where(i <= j, (j - i + 1) * scale, 0.0)
    out = _alloc(size)
    hist = np.zeros((q + 1, 4))  # statistics of the q+1 blocks before the chunk (zero before the start)
    for lo, hi in _spans(0, size):
        cur = _seg(x, lo, -(-hi // _L) * _L)
        if check and not _finite(cur):
            return None
        nr = cur.size // _L
        ext = np.empty((q + 1 + nr, 4))
        ext[: q + 1] = hist
        np.matmul(cur.reshape(nr, _L), wst, out=ext[q + 1 :])
        hist = ext[nr:].copy()
        bsum, bmom, psum, pmom = (np.ascontiguousarray(c) for c in ext.T)
        # Window sum and numerator ending just before block r: q whole blocks, then the last rho
        # values of the block before them.
        s_in, n_in = psum[:nr], pmom[:nr]
        if q:
            s_in = s_in + _wsum(bsum[1 : nr + q], q)
            n_in = n_in + _L * _wnum(bsum[1 : nr + q], q) + _wsum((bmom + (rho - _L) * bsum)[1 : nr + q], q)
        prev = _seg(x, lo - 1, lo - 1 + nr * _L)
        lag = _seg(x, lo - n - 1, lo - n - 1 + nr * _L)
        v = cur - prev
        v *= n
        v -= prev - lag
        blocks = v.reshape(nr, _L)
        step = (n + 1.0) * prev[::_L] - s_in - lag[::_L]  # N[rL−1] − N[rL−2]
        blocks[:, 0] += step + n_in  # (j+1)·step + n_in, folded into the first two inputs
        blocks[:, 1] -= n_in
        np.matmul(blocks, ramp, out=_rows(out, lo, hi))
    out[: n - 1] = _NAN
    return [out[:size]]


def _ema_core(x: np.ndarray, n: int, check: bool) -> list[np.ndarray] | None:
    size = x.size
    if size < n:
        return [_nans(size)]
    a = 2.0 / (n + 1)
    seed = float(x[:n].mean())
    rec = _Recursion(1.0 - a, a, [seed], n - 1)
    out = _alloc(size)
    for lo, hi in _spans(0, size):
        rec.feed(x[None, lo:hi], lo, _rows(out, lo, hi)[None], check)
    if check and not rec.ok:
        return None
    out[: n - 1] = _NAN
    out[n - 1] = seed
    return [out[:size]]


def _rsi_core(x: np.ndarray, n: int, check: bool) -> list[np.ndarray] | None:
    size = x.size
    if size <= n:
        return [_nans(size)]
    first = np.diff(x[: n + 1])
    seeds = [float(np.maximum(first, 0.0).mean()), float(np.abs(first).mean())]
    rec = _Recursion((n - 1.0) / n, 1.0 / n, seeds, n - 1)  # average gain, average gain + loss
    out = np.empty(size)
    out[:n] = _NAN
    for lo, hi in _spans(0, size - 1):  # change i is bar i+1's; the first RSI is bar n
        z = np.empty((2, hi - lo))
        np.subtract(x[lo + 1 : hi + 1], x[lo:hi], out=z[1])
        np.maximum(z[1], 0.0, out=z[0])
        np.abs(z[1], out=z[1])
        up, both = rec.feed(z, lo, np.empty((2, -(-(hi - lo) // _L), _L)), check, own=True)
        a = max(lo, n - 1)
        if a < hi:
            dst = out[a + 1 : hi + 1]
            np.divide(up[a - lo :], both[a - lo :], out=dst)  # 0/0 → NaN → 0 below
            dst *= 100.0
            np.fmax(dst, 0.0, out=dst)  # a series that never moved: TA-Lib gives 0
    if check and not rec.ok:
        return None
    return [out]


def _true_range(h: np.ndarray, low: np.ndarray, c: np.ndarray, a: int, b: int, out: np.ndarray) -> None:
    """TR[a:b] (a ≥ 1) into out: max(h, pc) − min(l, pc), which is TA-Lib's max(h−l, |h−pc|, |l−pc|) bit
    for bit when h ≥ l; TA-Lib's form where some h < l."""
    hh, ll, pc = h[a:b], low[a:b], c[a - 1 : b - 1]
    if not np.less(hh, ll).any():
        np.maximum(hh, pc, out=out)
        out -= np.minimum(ll, pc)
    else:
        np.subtract(hh, ll, out=out)
        np.maximum(out, np.abs(pc - hh), out=out)
        np.maximum(out, np.abs(pc - ll), out=out)


def _atr_core(h: np.ndarray, low: np.ndarray, c: np.ndarray, n: int, check: bool) -> list[np.ndarray] | None:
    size = c.size
    if size <= n:
        return [_nans(size)]
    if check and not (np.isfinite(h[0]) and np.isfinite(low[0]) and np.isfinite(c[-1])):
        return None  # the only inputs the true ranges do not see
    first = np.empty(n)
    _true_range(h, low, c, 1, n + 1, first)
    seed = float(first.mean())
    rec = _Recursion((n - 1.0) / n, 1.0 / n, [seed], n)
    out = _alloc(size)
    scratch = np.empty(min(_CHUNK, size))
    for lo, hi in _spans(0, size):
        tr = scratch[: hi - lo]
        a = max(lo, 1)
        _true_range(h, low, c, a, hi, tr[a - lo :])
        if lo == 0:
            tr[0] = 0.0
        rec.feed(tr[None], lo, _rows(out, lo, hi)[None], check, own=True)
    if check and not rec.ok:
        return None
    out[:n] = _NAN
    out[n] = seed
    return [out[:size]]


def _macd_core(x: np.ndarray, fast: int, slow: int, signal: int, check: bool) -> list[np.ndarray] | None:
    """Both EMAs from one pass: after the seed, one product [block | both incoming states] @ (fast −
    slow matrices) gives the MACD line directly; the signal EMA follows chunk by chunk."""
    size = x.size
    p, p2 = slow - 1, slow + signal - 2
    if size <= p2:
        return [_nans(size), _nans(size), _nans(size)]
    af, as_, ag = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (signal + 1)
    fr = _Recursion(1.0 - af, af, [float(x[slow - fast : slow].mean())], p)
    sr = _Recursion(1.0 - as_, as_, [float(x[:slow].mean())], p)
    ends = np.stack([fr.end, sr.end], axis=1)
    diff = np.zeros((_L + 2, _L))
    diff[:_L] = fr.mat[:_L] - sr.mat[:_L]
    diff[_L] = fr.mat[_L]
    diff[_L + 1] = -sr.mat[_L]
    aug = np.empty((_ROWS, _L + 2))
    sg: _Recursion | None = None  # the signal EMA, seeded once the first `signal` MACD values exist
    line, sig, hist = _alloc(size), _alloc(size), np.empty(size)
    for lo, hi in _spans(0, size):
        rows = _rows(line, lo, hi)
        nr = rows.shape[0]
        if lo <= p or (hi - lo) % _L:  # the seed's chunk (and a ragged end): each EMA on its own
            f = fr.feed(x[None, lo:hi], lo, np.empty((1, nr, _L)), check)
            s = sr.feed(x[None, lo:hi], lo, np.empty((1, nr, _L)))
            np.subtract(f[0], s[0], out=line[lo:hi])
        else:
            blocks = x[lo:hi].reshape(nr, _L)
            e = blocks @ ends
            a = aug[:nr]
            a[:, :_L] = blocks
            a[:, _L] = fr.advance(e[None, :, 0], check)[0]
            a[:, _L + 1] = sr.advance(e[None, :, 1], False)[0]
            np.matmul(a, diff, out=rows)
        if sg is None and p2 < hi:
            sg = _Recursion(1.0 - ag, ag, [float(line[p : p2 + 1].mean())], p2)
            for lo2, hi2 in _spans(0, lo):  # chunks before this one, when p2 lies beyond them
                sg.feed(line[None, lo2:hi2], lo2, _rows(sig, lo2, hi2)[None])
        if sg is not None:
            sg.feed(line[None, lo:hi], lo, _rows(sig, lo, hi)[None])
            np.subtract(line[lo:hi], sig[lo:hi], out=hist[lo:hi])
    if check and not (fr.ok and sr.ok):
        return None
    line[p] = fr.seeds[0] - sr.seeds[0]
    sig[p2] = line[p : p2 + 1].mean()
    hist[p2] = line[p2] - sig[p2]
    for a_ in (line, sig, hist):
        a_[:p2] = _NAN
    return [line[:size], sig[:size], hist]


def _bollinger_core(x: np.ndarray, n: int, k: float, check: bool) -> list[np.ndarray] | None:
    size = x.size
    upper, middle, lower = np.empty(size), np.empty(size), np.empty(size)
    for a in (upper, middle, lower):
        a[: n - 1] = _NAN
    for lo, hi in _spans(n - 1, size, max(_CHUNK, 4 * n)):
        seg = x[lo - n + 1 : hi]
        if check and not _finite(seg):
            return None
        s, q = _wvar(seg, n)
        mid, dev = middle[lo:hi], upper[lo:hi]
        np.divide(s, n, out=mid)
        np.divide(q, n, out=dev)
        np.sqrt(dev, out=dev)
        if k != 1.0:
            dev *= k
        np.subtract(mid, dev, out=lower[lo:hi])
        np.add(mid, dev, out=dev)
    return [upper, middle, lower]


def _stoch_core(
    h: np.ndarray, low: np.ndarray, c: np.ndarray, k: int, ks: int, d: int, check: bool
) -> list[np.ndarray] | None:
    size = c.size
    look = k + ks + d - 3
    slow_k, slow_d = np.empty(size), np.empty(size)
    slow_k[: min(look, size)] = _NAN
    slow_d[: min(look, size)] = _NAN
    for lo, hi in _spans(look, size, max(_CHUNK, 4 * look)):
        a = lo - look
        if check and not (_finite(h[a:hi]) and _finite(low[a:hi]) and _finite(c[a:hi])):
            return None
        hh = _wext(h[a:hi], k, np.maximum)
        ll = _wext(low[a:hi], k, np.minimum)
        rng = hh - ll
        fast = c[a + k - 1 : hi] - ll
        fast /= rng
        fast *= 100.0
        flat = np.abs(hh)
        flat += np.abs(ll)
        flat *= _EPS
        np.copyto(fast, 0.0, where=np.abs(rng) <= flat)  # TA_IS_ZERO_SCALED: a flat window reads 0
        sk = _wsum(fast, ks)
        sk /= ks
        np.divide(_wsum(sk, d), d, out=slow_d[lo:hi])
        slow_k[lo:hi] = sk[d - 1 :]
    return [slow_k, slow_d]


def _obv_core(c: np.ndarray, v: np.ndarray, check: bool) -> list[np.ndarray] | None:
    out = np.empty(c.size)
    if c.size:
        out[0] = v[0]
        step = out[1:]
        np.subtract(c[1:], c[:-1], out=step)
        if check and not _finite(step):
            return None
        up = step > 0
        np.less(step, 0, out=step)  # step: 1.0 where the close fell
        np.subtract(up, step, out=step)  # sign of the change
        step *= v[1:]
        np.cumsum(out, out=out)  # sequential, in TA-Lib's order: bit-identical sums
        if check and not np.isfinite(out[-1]):
            return None  # a NaN or inf volume reaches the last running total
    return [out]


# ---------------------------------------------------------------- public API


def sma(close: pl.Series, n: int) -> pl.Series:
    """Simple moving average (TA-Lib SMA): the mean of the last n values, first at index n−1."""
    n = _period("sma", "n", n, 1)
    (x,), nulls = _arrays("sma", close)
    (out,) = _windowed(lambda x, check: _sma_core(x, n, check), [x], nulls, n - 1)
    return _series(f"sma_{n}", out)


def ema(close: pl.Series, n: int) -> pl.Series:
    """Exponential moving average (TA-Lib EMA): k = 2/(n+1), seeded at index n−1 with the SMA of the first
    n values."""
    n = _period("ema", "n", n, 1)
    (x,), nulls = _arrays("ema", close)
    (out,) = _recursive(lambda x, check: _ema_core(x, n, check), [x], nulls)
    return _series(f"ema_{n}", out)


def wma(close: pl.Series, n: int) -> pl.Series:
    """Linearly weighted moving average (TA-Lib WMA): weights 1..n, newest heaviest, first at index n−1."""
    n = _period("wma", "n", n, 1)
    (x,), nulls = _arrays("wma", close)
    (out,) = _windowed(lambda x, check: _wma_core(x, n, check), [x], nulls, n - 1)
    return _series(f"wma_{n}", out)


def rsi(close: pl.Series, n: int = 14) -> pl.Series:
    """Relative strength index (TA-Lib RSI): Wilder averages seeded with the plain means of the first n
    changes; first value at index n; 0 on a series that never moved."""
    n = _period("rsi", "n", n, 2)
    (x,), nulls = _arrays("rsi", close)
    (out,) = _recursive(lambda x, check: _rsi_core(x, n, check), [x], nulls)
    return _series(f"rsi_{n}", out)


def macd(
    close: pl.Series, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[pl.Series, pl.Series, pl.Series]:
    """MACD line, signal and histogram (TA-Lib MACD): both EMAs seeded at index slow−1 (the fast one with
    the SMA of the `fast` bars ending there); all three start at slow+signal−2. fast > slow raises."""
    fast = _period("macd", "fast", fast, 2)
    slow = _period("macd", "slow", slow, 2)
    signal = _period("macd", "signal", signal, 1)
    if fast > slow:
        raise ValueError(f"macd: fast must be <= slow, got fast={fast}, slow={slow}")
    (x,), nulls = _arrays("macd", close)
    line, sig, hist = _recursive(lambda x, check: _macd_core(x, fast, slow, signal, check), [x], nulls)
    tag = f"{fast}_{slow}_{signal}"
    return _series(f"macd_{tag}", line), _series(f"macd_signal_{tag}", sig), _series(f"macd_hist_{tag}", hist)


def bollinger(close: pl.Series, n: int = 20, k: float = 2.0) -> tuple[pl.Series, pl.Series, pl.Series]:
    """Bollinger bands (TA-Lib BBANDS, matype 0): SMA(n) ± k·population standard deviation."""
    n = _period("bollinger", "n", n, 2)
    if isinstance(k, bool) or not isinstance(k, numbers.Real) or not math.isfinite(k):
        raise ValueError(f"bollinger: k must be a finite number, got {k!r}")
    k = float(k)
    (x,), nulls = _arrays("bollinger", close)
    upper, middle, lower = _windowed(lambda x, check: _bollinger_core(x, n, k, check), [x], nulls, n - 1)
    tag = f"{n}_{k:g}"
    return (
        _series(f"bb_upper_{tag}", upper),
        _series(f"bb_middle_{tag}", middle),
        _series(f"bb_lower_{tag}", lower),
    )


def stoch(
    high: pl.Series, low: pl.Series, close: pl.Series, k: int = 14, k_smooth: int = 3, d: int = 3
) -> tuple[pl.Series, pl.Series]:
    """Slow stochastic (TA-Lib STOCH with SMA smoothing): slow %K and %D, both from index k+k_smooth+d−3."""
    k = _period("stoch", "k", k, 1)
    k_smooth = _period("stoch", "k_smooth", k_smooth, 1)
    d = _period("stoch", "d", d, 1)
    arrays, nulls = _arrays("stoch", high, low, close)
    look = k + k_smooth + d - 3
    core = lambda h, lo, c, check: _stoch_core(h, lo, c, k, k_smooth, d, check)  # noqa: E731
    slow_k, slow_d = _windowed(core, arrays, nulls, look)
    tag = f"{k}_{k_smooth}_{d}"
    return _series(f"stoch_k_{tag}", slow_k), _series(f"stoch_d_{tag}", slow_d)


def atr(high: pl.Series, low: pl.Series, close: pl.Series, n: int = 14) -> pl.Series:
    """Average true range (TA-Lib ATR): first value at index n = mean(TR[1..n]), then Wilder smoothing."""
    n = _period("atr", "n", n, 1)
    arrays, nulls = _arrays("atr", high, low, close)
    (out,) = _recursive(lambda h, lo, c, check: _atr_core(h, lo, c, n, check), arrays, nulls)
    return _series(f"atr_{n}", out)


def obv(close: pl.Series, volume: pl.Series) -> pl.Series:
    """On-balance volume (TA-Lib OBV): volume[0], then ± each volume as the close rises or falls."""
    arrays, nulls = _arrays("obv", close, volume)
    (out,) = _recursive(_obv_core, arrays, nulls)
    return _series("obv", out)


def vwap(
    high: pl.Series, low: pl.Series, close: pl.Series, volume: pl.Series, day: pl.Series | None = None
) -> pl.Series:
    """Volume-weighted average price of the typical price (h+l+c)/3, cumulative within each `day` label
    (over the whole series when None); null while the cumulative volume is 0 and at missing bars,
    which add nothing."""
    arrays, nulls = _arrays("vwap", high, low, close, volume)
    if day is not None:
        if not isinstance(day, pl.Series):
            raise TypeError(f"vwap: day must be a polars Series or None, got {type(day).__name__}")
        if day.len() != close.len():
            raise ValueError(f"vwap: day must have the input length {close.len()}, got {day.len()}")
    h, lo, c, v = arrays
    with np.errstate(all="ignore"):
        pv = h + lo
        pv += c
        pv /= 3.0
        pv *= v
        valid = None
        if nulls or not (_finite(pv) and _finite(v)):
            valid = _complete(arrays)
            pv, v = np.where(valid, pv, 0.0), np.where(valid, v, 0.0)
        sums = pl.DataFrame({"pv": pv, "v": v}).lazy()
        if day is None:
            sums = sums.select(pl.all().cum_sum())
        else:
            sums = sums.with_columns(day.alias("day")).select(pl.col("pv", "v").cum_sum().over("day"))
        total = sums.collect()
        cum_v = total["v"].to_numpy()
        out = total["pv"].to_numpy() / cum_v
        out[cum_v == 0.0] = _NAN
        if valid is not None:
            out[~valid] = _NAN
    return _series("vwap", out)
