#!/usr/bin/env python3
"""The release wasm's code by crate, from twiggy.

    python3 bench/wasm_breakdown.py [WASM]

WASM defaults to the release build's wasm before wasm-bindgen and wasm-opt
(target/front/wasm32-unknown-unknown/wasm-release/tandem.wasm), the last
one that still has function names. Each function is counted under the crate
its name starts with; a generic function is attributed to the crate that
defines it, whatever crate instantiated it (so `reactive_graph` and `tachys`
include the app's own signals and views). wasm-bindgen's describe exports
and the functions only they call, which wasm-bindgen removes, and the name
section are left out. Prints JSON: bytes and
share per crate, largest first.
"""
import collections
import csv
import io
import json
import re
import subprocess
import sys

DEFAULT = "target/front/wasm32-unknown-unknown/wasm-release/tandem.wasm"


# wasm-bindgen's describe functions (the `__wbindgen_describe_*` exports'
# bodies and the `WasmDescribe`/`WasmClosure` `describe` impls they call):
# wasm-bindgen runs them to learn the bindings' types, then removes them.
DESCRIBE = re.compile(r"__wbindgen_describe|wasm_bindgen::describe|>::describe(::h[0-9a-f]+)?$")


def crate_of(name: str) -> str | None:
    if name.startswith(("custom section", '"function names"', "export ")):
        return None  # removed by wasm-bindgen / not code
    if DESCRIBE.search(name):
        return None
    if name.startswith("data segment"):
        return "(data: strings, tables)"
    if re.match(r"(elem|type|import|global|table)\b", name):
        return "(wasm structure)"
    # `<T as tachys::...>::f`: the trait's crate; `<&mut serde_json::...`: that crate.
    m = re.match(r"<T as ([A-Za-z_][A-Za-z0-9_]*)", name) or re.match(
        r"[<&\s]*(?:mut\s+|dyn\s+)?([A-Za-z_][A-Za-z0-9_]*)", name
    )
    return m.group(1) if m else "(other)"


def main() -> None:
    wasm = sys.argv[1] if len(sys.argv) > 1 else DEFAULT
    out = subprocess.run(
        ["twiggy", "top", "-n", "1000000", "-f", "csv", wasm],
        check=True, capture_output=True, text=True,
    ).stdout
    sizes: collections.Counter = collections.Counter()
    for row in csv.DictReader(io.StringIO(out)):
        crate = crate_of(row["Name"])
        if crate is not None:
            sizes[crate] += int(row["ShallowSize"])
    total = sum(sizes.values())
    rows = [{"crate": c, "bytes": b, "share": round(b / total, 4)} for c, b in sizes.most_common()]
    json.dump({"wasm": wasm, "total_bytes": total, "crates": rows}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
