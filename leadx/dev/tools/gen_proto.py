"""Generate Python code from proto/ into the leadx package (``make proto``).

With ``--check`` it generates into a scratch directory and fails when the committed code
differs, so CI catches protos changed without regenerating.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[3]
PROTO_DIR = ROOT / "proto"


def _target(proto: Path) -> Path:
    """Where a proto's code goes: proto/leadx/events/v1/events.proto -> leadx/contracts/events/v1/events.

    The proto files keep their published paths and packages (`leadx.events.v1`); only the generated
    Python lives under `leadx.contracts`, beside the topic names, as the layer every other one uses."""
    relative = proto.relative_to(PROTO_DIR / "leadx")
    return Path("leadx") / "contracts" / relative


def _outputs(out_dir: Path, proto: Path) -> list[Path]:
    stem = out_dir / _target(proto).with_suffix("")
    outputs = [stem.with_name(stem.name + "_pb2.py"), stem.with_name(stem.name + "_pb2.pyi")]
    if "\nservice " in proto.read_text():
        outputs.append(stem.with_name(stem.name + "_pb2_grpc.py"))
    return outputs


def _generate(out_dir: Path) -> list[Path]:
    """Run protoc on every proto; return exactly the files it is responsible for."""
    include = Path(protoc.__file__).parent / "_proto"
    generated: list[Path] = []
    with tempfile.TemporaryDirectory() as staging:
        # protoc names modules (and their imports) by the proto's path, so each proto is staged at
        # the path of the module it becomes.
        for proto in sorted(PROTO_DIR.rglob("*.proto")):
            staged = Path(staging) / _target(proto)
            staged.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(proto, staged)
        for proto in sorted(PROTO_DIR.rglob("*.proto")):
            outputs = _outputs(out_dir, proto)
            plugins = [f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
            if len(outputs) == 3:
                plugins.append(f"--grpc_python_out={out_dir}")
            staged = Path(staging) / _target(proto)
            if protoc.main(["protoc", f"-I{staging}", f"-I{include}", *plugins, str(staged)]) != 0:
                raise SystemExit(f"protoc failed on {proto.relative_to(ROOT)}")
            generated.extend(outputs)
            # Package markers between leadx/contracts and the generated module, e.g. contracts/events/v1.
            for parent in outputs[0].parents:
                if parent == out_dir / "leadx" / "contracts":
                    break
                init = parent / "__init__.py"
                if not init.exists():
                    init.write_text("")
                generated.append(init)
    return sorted(set(generated))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed code differs")
    args = parser.parse_args()
    if not args.check:
        for path in _generate(ROOT):
            print(f"generated {path.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        fresh = _generate(Path(scratch))
        drift = []
        for path in fresh:
            committed = ROOT / path.relative_to(scratch)
            if not committed.exists() or not filecmp.cmp(path, committed, shallow=False):
                drift.append(str(committed.relative_to(ROOT)))
        if drift:
            print("generated code differs from proto/ — run `make proto`:", *drift, sep="\n  ")
            return 1
    print("generated code matches proto/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
