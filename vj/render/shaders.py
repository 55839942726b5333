"""GLSL program loading from `shaders/` with hot reload and file:line compile errors.

A program that fails to compile keeps the last good one (or a built-in fallback), so the show
goes on while the error is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import moderngl


def default_shader_dir() -> Path:
    """`shaders/` at the project root (beside the `vj` package)."""
    return Path(__file__).resolve().parents[2] / "shaders"


# Built-ins: used when a file is missing or never compiled. Kept minimal on purpose.
BUILTIN_VERTEX = """#version 330 core
out vec2 uv;
void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));
    uv = p;
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
"""

BUILTIN_PASSTHROUGH = """#version 330 core
uniform sampler2D scene;
in vec2 uv;
out vec4 frag;
void main() { frag = vec4(texture(scene, uv).rgb, 1.0); }
"""

# Mesa: "0:12(5): error: ..."; NVIDIA: "0(12) : error C0000: ..."; others: "ERROR: 0:12: ..."
_ERR_PATTERNS = (
    re.compile(r"^\s*\d+:(\d+)\(\d+\):\s*(.*)$"),
    re.compile(r"^\s*\d+\((\d+)\)\s*:\s*(.*)$"),
    re.compile(r"^\s*(?:ERROR|WARNING):\s*\d+:(\d+):\s*(.*)$"),
)
_STAGE_NAMES = {"vertex_shader": "vertex", "fragment_shader": "fragment"}


def format_gl_error(text: str, paths: dict[str, str]) -> str:
    """Rewrite a moderngl compile/link error as `file:line: message` lines.

    `paths` maps "vertex"/"fragment" to the display name of that stage's source.
    """
    stage = "fragment"
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or set(line) == {"="}:
            continue
        if line in _STAGE_NAMES:
            stage = _STAGE_NAMES[line]
            continue
        if line in ("GLSL Compiler failed", "GLSL Linker failed"):
            continue
        for pat in _ERR_PATTERNS:
            m = pat.match(line)
            if m:
                out.append(f"{paths.get(stage, stage)}:{m.group(1)}: {m.group(2)}")
                break
        else:
            out.append(f"{paths.get(stage, stage)}: {line}")
    return "\n".join(out) if out else f"{paths.get(stage, stage)}: {text.strip()}"


def concise_error(detail: str) -> str:
    """The first `file:line: error` line of a formatted log, plus how many lines followed.

    One typo can make a driver print dozens of follow-on errors; the first is the one to fix.
    """
    lines = [s for s in detail.splitlines() if s.strip()]
    if not lines:
        return detail
    first = next((s for s in lines if "error" in s.lower()), lines[0])
    rest = len(lines) - 1
    return first + (f" (+{rest} more driver line{'s' if rest > 1 else ''})" if rest else "")


def with_defines(source: str, defines: dict[str, str]) -> str:
    """Insert `#define`s after the `#version` line, keeping the file's line numbers for errors.

    Compile-time switches instead of uniform branches: llvmpipe runs both sides of a branch.
    """
    if not defines:
        return source
    lines = source.split("\n")
    at = next((i for i, s in enumerate(lines) if s.lstrip().startswith("#version")), -1) + 1
    block = [f"#define {k} {v}" for k, v in defines.items()] + [f"#line {at + 1}"]
    return "\n".join(lines[:at] + block + lines[at:])


@dataclass
class _Source:
    path: Path | None  # None = built-in text
    builtin: str
    stamp: tuple[int, int] | None = None  # (mtime_ns, size) when last read

    def name(self) -> str:
        return str(self.path) if self.path is not None else "<built-in>"

    def current_stamp(self) -> tuple[int, int] | None:
        if self.path is None:
            return None
        try:
            st = self.path.stat()
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def read(self) -> str:
        if self.path is None:
            return self.builtin
        return self.path.read_text(encoding="utf-8")


class HotProgram:
    """A vertex+fragment program from files, rebuilt by `poll()` when a file changes.

    `program` and `vao` (a full-screen triangle; render with `vertices=3`) are always usable:
    a failed build keeps the last good program; with none, the built-in fallback.
    """

    def __init__(
        self,
        ctx: moderngl.Context,
        fragment: Path | None,
        fallback_fragment: str,
        vertex: Path | None = None,
        defines: dict[str, str] | None = None,
    ) -> None:
        self.ctx = ctx
        self.defines = dict(defines or {})
        self._vert = _Source(
            vertex if vertex is not None and vertex.is_file() else None, BUILTIN_VERTEX
        )
        self._frag = _Source(fragment, fallback_fragment)
        self.error: str | None = None  # one line: file:line: first error (+N more)
        self.error_detail: str | None = None  # the whole formatted driver log
        self._previous: moderngl.Program | None = None  # last good build, kept for revert()
        self.program: moderngl.Program
        self.vao: moderngl.VertexArray
        self.generation = 0  # bumps on every successful (re)build
        if self._build() is not None:
            # first build failed: the show goes on with the built-in fallback (error kept)
            fs = with_defines(fallback_fragment, self.defines)
            self._install(self.ctx.program(vertex_shader=BUILTIN_VERTEX, fragment_shader=fs))

    @property
    def fragment_name(self) -> str:
        return self._frag.name()

    def _install(self, prog: moderngl.Program) -> None:
        old = getattr(self, "program", None)
        old_vao = getattr(self, "vao", None)
        self.program = prog
        self.vao = self.ctx.vertex_array(prog, [])
        self.generation += 1
        if old_vao is not None:
            old_vao.release()
        if self._previous is not None:
            self._previous.release()
        self._previous = old  # kept, so a reload that turns out too slow can be reverted

    def revert(self, reason: str) -> bool:
        """Go back to the build before the current one (kept until the file changes again).

        Returns False when there is none. `error` becomes `reason`.
        """
        if self._previous is None:
            return False
        bad, self.program, self._previous = self.program, self._previous, None
        self.vao.release()
        self.vao = self.ctx.vertex_array(self.program, [])
        bad.release()
        self.generation += 1
        self.error = self.error_detail = reason
        return True

    def release(self) -> None:
        self.vao.release()
        self.program.release()
        if self._previous is not None:
            self._previous.release()
            self._previous = None

    def _build(self) -> str | None:
        """(Re)build from the sources; returns an error message or None on success."""
        self._vert.stamp = self._vert.current_stamp()
        self._frag.stamp = self._frag.current_stamp()
        try:
            vs, fs = self._vert.read(), with_defines(self._frag.read(), self.defines)
        except (OSError, UnicodeDecodeError) as exc:
            self.error = self.error_detail = f"{self._frag.name()}: cannot read shader: {exc}"
            return self.error
        try:
            prog = self.ctx.program(vertex_shader=vs, fragment_shader=fs)
        except moderngl.Error as exc:
            names = {"vertex": self._vert.name(), "fragment": self._frag.name()}
            self.error_detail = format_gl_error(str(exc), names)
            self.error = concise_error(self.error_detail)
            return self.error
        self._install(prog)
        self.error = self.error_detail = None
        return None

    def changed(self) -> bool:
        return any(
            s.path is not None and s.current_stamp() != s.stamp for s in (self._vert, self._frag)
        )

    def poll(self) -> str | None:
        """Rebuild if a source file changed. Returns an event line, or None if nothing changed."""
        if not self.changed():
            return None
        err = self._build()
        return err if err is not None else f"{self._frag.name()}: reloaded"


def list_effects(shader_dir: Path) -> list[str]:
    d = shader_dir / "effects"
    return sorted(p.stem for p in d.glob("*.frag")) if d.is_dir() else []
