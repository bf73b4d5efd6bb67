"""Shader sources: includes, defines, stage splitting and naming, without a GL context; and,
where glslang is installed (CI installs it), each stage compiles as desktop GLSL."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from installation.render import plan
from installation.render.settings import RenderSettings
from installation.render.shader_source import (SHADER_DIR, ShaderSourceError, load_program,
                                               look_defines)

PROGRAMS = [("particles.glsl", {})] + [("post.glsl", {p: None})
                                       for p in ("PASS_BRIGHT", "PASS_BLUR", "PASS_COMPOSE")]
EXT = {"vertex": "vert", "fragment": "frag", "geometry": "geom"}


def active_code(src: str) -> str:
    """The lines a GLSL preprocessor keeps, for the `defined NAME` conditionals these shaders
    use, without comments."""
    defined: set[str] = set()
    stack: list[list[bool]] = []      # [this branch active, some branch taken]
    keep = []
    for line in re.sub(r"//.*", "", src).splitlines():
        d = re.match(r"\s*#\s*(\w+)\s*(.*)", line)
        outer = all(frame[0] for frame in stack)
        if d and d.group(1) in ("if", "ifdef", "ifndef", "elif", "else", "endif"):
            kw, arg = d.group(1), d.group(2).strip()
            name = re.sub(r"^defined\s*\(?\s*(\w+)\s*\)?$", r"\1", arg)
            if kw in ("if", "ifdef"):
                stack.append([name in defined, name in defined])
            elif kw == "ifndef":
                stack.append([name not in defined, name not in defined])
            elif kw == "elif":
                stack[-1] = [not stack[-1][1] and name in defined, stack[-1][1] or name in defined]
            elif kw == "else":
                stack[-1] = [not stack[-1][1], True]
            else:
                stack.pop()
            continue
        if outer:
            if d and d.group(1) == "define":
                defined.add(d.group(2).split()[0])
            keep.append(line)
    return "\n".join(keep)


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def program_text(body_vs="void main() { gl_Position = vec4(0.0); }",
                 body_fs="out vec4 o_c; void main() { o_c = vec4(1.0); }", head="") -> str:
    return (f"#version 330 core\n{head}#if defined VERTEX_SHADER\n{body_vs}\n"
            f"#elif defined FRAGMENT_SHADER\n{body_fs}\n#endif\n")


@pytest.mark.parametrize("name,defines", PROGRAMS)
def test_shipped_programs_split_into_stages(name, defines):
    prog = load_program(name, {**look_defines(), **defines})
    assert set(prog.stages) == {"vertex", "fragment"}
    for stage, src in prog.stages.items():
        lines = src.splitlines()
        assert lines[0] == "#version 330 core"
        assert lines[1] == f"#define {stage.upper()}_SHADER"
        assert "#include" not in src.replace("// #include", "")
        other = "FRAGMENT_SHADER" if stage == "vertex" else "VERTEX_SHADER"
        assert f"#define {other}" not in src
        assert len(re.findall(r"^\s*#\s*version", src, re.M)) == 1
        for k, v in look_defines().items():
            assert f"#define {k} {v}" in src


@pytest.mark.parametrize("name,defines", PROGRAMS)
def test_shader_variables_follow_the_naming_convention(name, defines):
    prog = load_program(name, {**look_defines(), **defines})
    for stage, src in prog.stages.items():
        code = active_code(src)
        uniforms = re.findall(r"^\s*uniform\s+\w+\s+(\w+)", code, re.M)
        assert all(u.startswith("u_") for u in uniforms), uniforms
        ins = re.findall(r"^\s*(?:layout\s*\([^)]*\)\s*)?in\s+\w+\s+(\w+)", code, re.M)
        outs = re.findall(r"^\s*(?:layout\s*\([^)]*\)\s*)?out\s+\w+\s+(\w+)", code, re.M)
        if stage == "vertex":
            assert all(a.startswith("a_") for a in ins), ins
            assert all(v.startswith("v_") for v in outs), outs
        else:
            assert all(v.startswith("v_") for v in ins), ins
            assert all(o.startswith("o_") for o in outs), outs
    # the varyings a vertex stage writes are the ones its fragment stage reads
    vs_out = set(re.findall(r"^\s*out\s+\w+\s+(v_\w+)", active_code(prog.vertex), re.M))
    fs_in = set(re.findall(r"^\s*in\s+\w+\s+(v_\w+)", active_code(prog.fragment), re.M))
    assert vs_out == fs_in


def test_look_defines_carry_the_cpu_constants():
    d = look_defines()
    assert float(d["LM_ENCODE_A"]) == plan.ENCODE_A
    assert float(d["LM_ENCODE_KNEE"]) == plan.ENCODE_KNEE
    assert float(d["LM_ENCODE_TOE"]) == plan.ENCODE_TOE
    # the default bloom fits the GL blur's tap array up to 4K
    radius = RenderSettings().bloom_radius
    for w, h in ((1280, 720), (1920, 1080), (3840, 2160)):
        assert len(plan.bloom_plan(w, h, radius).weights) <= int(d["LM_MAX_TAPS"])
    assert all(re.fullmatch(r"-?\d+(\.\d*)?(e-?\d+)?", v) for v in d.values())


def test_include_is_expanded_once_with_line_directives(tmp_path):
    write(tmp_path, "lib/a.glsl", "float a() { return 1.0; }\n")
    write(tmp_path, "lib/b.glsl", '#include "a.glsl"\nfloat b() { return a(); }\n')
    write(tmp_path, "p.glsl", program_text(head='#include "lib/a.glsl"\n#include "lib/b.glsl"\n'))
    prog = load_program("p.glsl", folders=(tmp_path,))
    src = prog.vertex
    assert src.count("float a()") == 1 and src.count("float b()") == 1
    assert [Path(f).name for f in prog.files] == ["p.glsl", "a.glsl", "b.glsl"]
    # after lib/a.glsl (source string 1) the main file resumes at its line 3
    assert "#line 1 1\nfloat a() { return 1.0; }\n#line 3 0\n" in src
    assert "#line 1 2\n" in src


def test_defines_replace_existing_values_or_are_added(tmp_path):
    write(tmp_path, "p.glsl", program_text(head="#define COUNT 4\n"))
    prog = load_program("p.glsl", {"COUNT": 9, "EXTRA": 0.5, "FLAG": None}, folders=(tmp_path,))
    for src in prog.stages.values():
        assert "#define COUNT 9" in src and "#define COUNT 4" not in src
        assert "#define EXTRA 0.5\n" in src and "#define FLAG\n" in src
        head = src.splitlines()[:5]
        assert head[0].startswith("#version") and "#define EXTRA 0.5" in head


@pytest.mark.parametrize("files,defines,message", [
    ({"p.glsl": program_text(head='#include "missing.glsl"\n')}, {}, r"p.glsl:2: #include: 'missing.glsl' not found"),
    ({"p.glsl": program_text(head='#include "a.glsl"\n'), "a.glsl": '#include "b.glsl"\n',
      "b.glsl": '#include "a.glsl"\n'}, {}, r"#include cycle p.glsl → a.glsl → b.glsl → a.glsl"),
    ({"p.glsl": "void main() {}\n"}, {}, "no #version line"),
    ({"p.glsl": "float x;\n" + program_text()}, {}, "#version must come before anything else"),
    ({"p.glsl": "#version 330 core\n#if defined VERTEX_SHADER\nvoid main() {}\n#endif\n"}, {}, "needs both"),
    ({"p.glsl": program_text()}, {"bad name": 1}, "not a GLSL identifier"),
    ({"p.glsl": program_text()}, {"X": "1\n#define Y 2"}, "line break"),
])
def test_source_errors_are_one_clear_line(tmp_path, files, defines, message):
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(ShaderSourceError, match=message) as err:
        load_program("p.glsl", defines, folders=(tmp_path,))
    assert "\n" not in str(err.value)


def test_missing_program_names_the_folders():
    with pytest.raises(ShaderSourceError, match="not found"):
        load_program("nope.glsl")


def _glslang(src: str, stage: str, tmp_path: Path) -> subprocess.CompletedProcess:
    f = tmp_path / f"shader.{EXT[stage]}"
    f.write_text(src)
    return subprocess.run(["glslangValidator", str(f)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("name,defines", PROGRAMS)
def test_every_stage_compiles(name, defines, tmp_path, require):
    require(shutil.which("glslangValidator") is not None, "glslangValidator (apt install glslang-tools)")
    prog = load_program(name, {**look_defines(), **defines})
    for stage, src in prog.stages.items():
        done = _glslang(src, stage, tmp_path)
        assert done.returncode == 0, f"{name} {stage}:\n{done.stdout}{done.stderr}"


def test_compiler_messages_point_at_the_right_file_and_line(tmp_path, require):
    require(shutil.which("glslangValidator") is not None, "glslangValidator (apt install glslang-tools)")
    write(tmp_path, "inc/f.glsl", "float f()\n{\n    return undefined_in_include;\n}\n")
    write(tmp_path, "p.glsl", program_text(head='// one\n#include "inc/f.glsl"\n',
                                           body_fs="out vec4 o_c;\nvoid main() { o_c = vec4(oops); }"))
    prog = load_program("p.glsl", folders=(tmp_path,))
    done = _glslang(prog.vertex, "vertex", tmp_path)
    assert "1:3: 'undefined_in_include'" in done.stdout          # f.glsl, line 3
    (tmp_path / "inc/f.glsl").write_text("float f() { return 1.0; }\n")
    prog = load_program("p.glsl", folders=(tmp_path,))
    done = _glslang(prog.fragment, "fragment", tmp_path)
    assert "0:8: 'oops'" in done.stdout                           # p.glsl, line 8


def test_post_without_a_pass_does_not_compile(tmp_path, require):
    require(shutil.which("glslangValidator") is not None, "glslangValidator (apt install glslang-tools)")
    prog = load_program("post.glsl", look_defines())
    done = _glslang(prog.fragment, "fragment", tmp_path)
    assert done.returncode != 0 and "define one of PASS_BRIGHT" in done.stdout


def test_shader_folder_is_in_the_repository():
    assert (SHADER_DIR / "particles.glsl").is_file() and (SHADER_DIR / "post.glsl").is_file()
