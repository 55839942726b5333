"""CUDA–GL interop: copy a CUDA tensor into a GL texture through a registered PBO, no host copy.

Uses the CUDA driver API (libcuda) through ctypes, so no extra package is needed; nothing is
loaded until a `CudaGLUploader` is made. Needs the NVIDIA GL driver (GLX or EGL) on the same GPU
as the tensor: elsewhere (Mesa/llvmpipe, another GPU) `interop_unavailable()` says why.
`FrameUploader` is what the compositor uses: any frame (numpy, CPU or CUDA tensor; uint8,
float16 or float32) into a texture, by interop where it works and through the host otherwise,
falling back on its own — and saying so — when a map or copy fails mid-show.
"""

from __future__ import annotations

import ctypes
from typing import Any

import moderngl

_REGISTER_WRITE_DISCARD = 2  # CU_GRAPHICS_REGISTER_FLAGS_WRITE_DISCARD
_GL_DEVICE_LIST_ALL = 1  # CU_GL_DEVICE_LIST_ALL
# texture dtype for each frame dtype (numpy / torch names)
TEXTURE_DTYPES = {"uint8": "f1", "float16": "f2", "float32": "f4"}


class InteropError(RuntimeError):
    pass


def _load_libcuda() -> ctypes.CDLL:
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise InteropError("libcuda (the NVIDIA driver's CUDA library) was not found")


def interop_unavailable(ctx: moderngl.Context) -> str | None:
    """None if CUDA tensors can be uploaded into this GL context directly, else why not."""
    vendor = str(ctx.info.get("GL_VENDOR", "")) + " " + str(ctx.info.get("GL_RENDERER", ""))
    if "nvidia" not in vendor.lower():
        return f"GL renderer is not NVIDIA's ({vendor.strip()})"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    try:
        _load_libcuda()
    except InteropError as exc:
        return str(exc)
    return None


def frame_dtype(frame) -> str:
    """'uint8', 'float16' or 'float32' for a numpy array or torch tensor (else its dtype)."""
    return str(frame.dtype).removeprefix("torch.")


class CudaGLUploader:
    """One PBO registered with CUDA; `upload(tensor, texture)` fills the texture on the GPU.

    Must be created and used on the thread whose GL context is current (the render thread).
    """

    def __init__(self, ctx: moderngl.Context, nbytes: int, device: int = 0) -> None:
        reason = interop_unavailable(ctx)
        if reason is not None:
            raise InteropError(f"CUDA-GL interop unavailable: {reason}")
        self.ctx = ctx
        self.device = int(device)
        self._cu = _load_libcuda()
        self._res = ctypes.c_void_p()
        import torch

        torch.cuda.init()
        with torch.cuda.device(self.device):  # the device's primary context, current here
            self._ensure_context()
            self._check_gl_device()
            self.nbytes = int(nbytes)
            self.pbo = ctx.buffer(reserve=self.nbytes, dynamic=True)
            try:
                self._check(
                    self._cu.cuGraphicsGLRegisterBuffer(
                        ctypes.byref(self._res),
                        ctypes.c_uint(self.pbo.glo),
                        _REGISTER_WRITE_DISCARD,
                    ),
                    "cuGraphicsGLRegisterBuffer",
                )
            except InteropError:
                self.pbo.release()
                raise

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            name = ctypes.c_char_p()
            self._cu.cuGetErrorName(rc, ctypes.byref(name))
            msg = name.value.decode() if name.value else str(rc)
            raise InteropError(f"{what} failed: {msg}")

    def _ensure_context(self) -> None:
        # torch works in the device's primary context; make it current on this thread
        cur = ctypes.c_void_p()
        self._check(self._cu.cuCtxGetCurrent(ctypes.byref(cur)), "cuCtxGetCurrent")
        if not cur.value:
            dev = ctypes.c_int()
            self._check(self._cu.cuDeviceGet(ctypes.byref(dev), self.device), "cuDeviceGet")
            self._check(self._cu.cuDevicePrimaryCtxRetain(ctypes.byref(cur), dev), "retain ctx")
            self._check(self._cu.cuCtxSetCurrent(cur), "cuCtxSetCurrent")

    def _check_gl_device(self) -> None:
        """The GL context must run on the tensor's GPU (multi-GPU nodes: GL may be elsewhere)."""
        fn = getattr(self._cu, "cuGLGetDevices_v2", None) or self._cu.cuGLGetDevices
        count = ctypes.c_uint()
        devs = (ctypes.c_int * 16)()
        rc = fn(ctypes.byref(count), devs, ctypes.c_uint(16), _GL_DEVICE_LIST_ALL)
        if rc != 0:
            self._check(rc, "cuGLGetDevices (is the GL context on an NVIDIA GPU?)")
        want = ctypes.c_int()
        self._check(self._cu.cuDeviceGet(ctypes.byref(want), self.device), "cuDeviceGet")
        gl = [devs[i] for i in range(min(count.value, 16))]
        if want.value not in gl:
            raise InteropError(
                f"the GL context runs on CUDA device(s) {gl}, the frames are on cuda:{self.device}"
            )

    def upload(
        self, tensor: Any, texture: moderngl.Texture, stream: Any = None, event: Any = None
    ) -> None:
        """Copy a CUDA tensor [h, w, C] (uint8, float16 or float32) into `texture` (same size,
        C components, matching dtype f1/f2/f4).

        The copy runs on `stream` (a torch.cuda.Stream; default: the tensor device's current
        stream) after `event` (the producer's end-of-frame event) when given, so it is ordered
        after the kernels that made the tensor, wherever they ran. Passing the producer's own
        stream also orders the producer's later writes to that buffer after this copy.
        Unmapping orders the copy before the GL texture update. Raises InteropError on a CUDA
        failure (the first one: a failing unmap after a failed copy does not hide it).
        """
        import torch

        h, w, c = tensor.shape
        kind = frame_dtype(tensor)
        if not tensor.is_cuda or kind not in TEXTURE_DTYPES or not tensor.is_contiguous():
            raise ValueError(
                "interop upload needs a contiguous CUDA uint8/float16/float32 [h, w, C] tensor"
            )
        if texture.size != (w, h) or texture.components != c:
            raise ValueError(
                f"texture {texture.size}x{texture.components} != tensor {tuple(tensor.shape)}"
            )
        if texture.dtype != TEXTURE_DTYPES[kind]:
            raise ValueError(f"texture dtype {texture.dtype} != tensor {kind}")
        n = tensor.numel() * tensor.element_size()
        if n > self.nbytes:
            raise ValueError(f"tensor of {n} bytes exceeds the {self.nbytes}-byte interop buffer")
        if tensor.device.index != self.device:
            raise InteropError(f"frame on {tensor.device}, interop buffer on cuda:{self.device}")
        with torch.cuda.device(tensor.device):
            self._ensure_context()
            s = stream or torch.cuda.current_stream(tensor.device)
            if event is not None:
                s.wait_event(event)  # on the GPU: the host does not wait
            st = ctypes.c_void_p(s.cuda_stream)
            res = ctypes.byref(self._res)
            self._check(self._cu.cuGraphicsMapResources(1, res, st), "map")
            try:
                ptr = ctypes.c_uint64()
                size = ctypes.c_size_t()
                self._check(
                    self._cu.cuGraphicsResourceGetMappedPointer_v2(
                        ctypes.byref(ptr), ctypes.byref(size), self._res
                    ),
                    "cuGraphicsResourceGetMappedPointer",
                )
                self._check(
                    self._cu.cuMemcpyDtoDAsync_v2(
                        ctypes.c_uint64(ptr.value),
                        ctypes.c_uint64(tensor.data_ptr()),
                        ctypes.c_size_t(n),
                        st,
                    ),
                    "cuMemcpyDtoDAsync",
                )
            except BaseException:
                # best effort: the error being raised is the one to report, not the unmap's
                self._cu.cuGraphicsUnmapResources(1, res, st)
                raise
            self._check(self._cu.cuGraphicsUnmapResources(1, res, st), "unmap")
        texture.write(self.pbo)  # PBO → texture: a GPU-side copy

    def release(self) -> None:
        if self._res.value:
            self._cu.cuGraphicsUnregisterResource(self._res)
            self._res = ctypes.c_void_p()
        self.pbo.release()


class FrameUploader:
    """Frames into GL textures by the best path this context allows, chosen per frame.

    `upload(frame, texture, stream, event)`: numpy arrays and CPU tensors are written from the
    host; CUDA tensors go through CUDA-GL interop when `interop_unavailable` finds nothing
    against it, else — or when interop fails mid-show (map, copy, unmap) — through a host copy
    ordered after `event`. Each change of path is told once through `warn`; `path` and
    `reason` say what the last frame used and why.
    """

    def __init__(self, ctx: moderngl.Context, warn=None) -> None:
        self.ctx = ctx
        self._warn = warn
        self._gpu: CudaGLUploader | None = None
        self._broken: str | None = None  # why interop is off for this context, once known
        self.path = "none"  # "host" or "interop": what the last frame used
        self.reason = ""  # why the last CUDA frame went through the host, if it did

    def route_for(self, device) -> str:
        """'interop' or 'host' for a frame on `device` (a torch.device); sets `reason`."""
        if getattr(device, "type", "cpu") != "cuda":
            return "host"
        if self._broken is None:
            why = interop_unavailable(self.ctx)
            if why is not None:
                self._fail(f"CUDA-GL interop unavailable: {why}")
        return "host" if self._broken is not None else "interop"

    def upload(self, frame, texture: moderngl.Texture, stream: Any = None, event: Any = None):
        """Write `frame` [h, w, C] into `texture`; returns the path used."""
        device = getattr(frame, "device", None)
        if self.route_for(device) == "interop":
            try:
                self._interop(frame, texture, stream, event)
                self.path = "interop"
                return self.path
            except InteropError as exc:  # a failed map must not end the show: host from now on
                self._fail(f"CUDA-GL interop failed, host copies from now on: {exc}")
        self._host(frame, texture, event)
        self.path = "host"
        return self.path

    def _interop(self, frame, texture, stream, event) -> None:
        n = frame.numel() * frame.element_size()
        index = frame.device.index or 0
        up = self._gpu
        if up is None or up.nbytes < n or up.device != index:
            if up is not None:
                up.release()
            self._gpu = None
            self._gpu = CudaGLUploader(self.ctx, n, index)
        self._gpu.upload(frame.contiguous(), texture, stream=stream, event=event)

    def _host(self, frame, texture, event) -> None:
        if type(frame).__module__.startswith("torch"):
            if frame.is_cuda:
                import torch

                if event is not None:  # the copy below runs on the current stream: order it
                    torch.cuda.current_stream(frame.device).wait_event(event)
                frame = frame.detach().cpu()
            frame = frame.contiguous().numpy()
        texture.write(frame if frame.flags.c_contiguous else frame.copy(order="C"))

    def _fail(self, why: str) -> None:
        self._broken = self.reason = why
        if self._gpu is not None:
            try:
                self._gpu.release()
            except Exception:  # the context may be in an error state; the reason is kept
                pass
            self._gpu = None
        if self._warn is not None:
            self._warn(why)

    def describe(self) -> str:
        """For the HUD and reports: the upload path and, for host copies of CUDA frames, why."""
        if self.path == "host" and self.reason:
            return f"upload host copy ({self.reason})"
        return f"upload {self.path}"

    def release(self) -> None:
        if self._gpu is not None:
            self._gpu.release()
            self._gpu = None
