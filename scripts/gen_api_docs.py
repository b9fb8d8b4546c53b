#!/usr/bin/python3
"""Generate docs/API.md, the gRPC API reference, from the .proto comments.

usage: scripts/gen_api_docs.py [OUTPUT]           write OUTPUT (default docs/API.md)
       scripts/gen_api_docs.py --proto-root DIR ...  read DIR/debias/v1/*.proto etc.
       scripts/gen_api_docs.py --check [OUTPUT]   exit 1 if OUTPUT differs from
                                                  what would be generated (CI)
       scripts/gen_api_docs.py --undocumented     list fields/RPCs without a
                                                  comment on stdout, one a line

The comments in proto/ are the API documentation (docs/ARCHITECTURE: "Field
comments are the API docs"); this script only lays them out. It runs Debian's
protoc (`--include_source_info --descriptor_set_out`) over every .proto under
proto/debias/v1 and proto/grpc/health/v1 and reads the FileDescriptorSet with
the python3 google.protobuf package, so it sees exactly what the compiler sees
(types, labels, oneofs, proto3 `optional`, maps) together with each element's
leading and trailing comments.

Comment rules it applies (so the proto files read naturally):
  - A leading comment whose first line is `--- Title ---` starts a section of a
    message; the title becomes a row of the field table.
  - proto files often document two or three fields with one comment above the
    first ("// Users and items with at least one event." over `users` and
    `items`). A field without a comment of its own inherits the comment of the
    field directly above it (no blank line in between) only when that comment
    names the field; otherwise it is left undocumented and `--undocumented`
    lists it.
  - The comment above `syntax` (the file's header) documents a service that
    has no comment of its own.

The output is deterministic: files in sorted path order, elements in
declaration order, no timestamps. Requires: protoc on PATH (or $PROTOC) and
python3-protobuf (/usr/bin/python3 on Debian).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO_ROOT = os.path.join(REPO, "proto")
PROTO_DIRS = ("debias/v1", "grpc/health/v1")

# FileDescriptorProto / DescriptorProto / ServiceDescriptorProto / EnumDescriptorProto
# field numbers used in SourceCodeInfo paths.
FILE_SYNTAX = 12
FILE_MESSAGE = 4
FILE_ENUM = 5
FILE_SERVICE = 6
MSG_FIELD = 2
MSG_NESTED = 3
MSG_ENUM = 4
ENUM_VALUE = 2
SERVICE_METHOD = 2

FDP = descriptor_pb2.FieldDescriptorProto
SCALAR_NAMES = {
    FDP.TYPE_DOUBLE: "double", FDP.TYPE_FLOAT: "float", FDP.TYPE_INT64: "int64",
    FDP.TYPE_UINT64: "uint64", FDP.TYPE_INT32: "int32", FDP.TYPE_FIXED64: "fixed64",
    FDP.TYPE_FIXED32: "fixed32", FDP.TYPE_BOOL: "bool", FDP.TYPE_STRING: "string",
    FDP.TYPE_BYTES: "bytes", FDP.TYPE_UINT32: "uint32", FDP.TYPE_SFIXED32: "sfixed32",
    FDP.TYPE_SFIXED64: "sfixed64", FDP.TYPE_SINT32: "sint32", FDP.TYPE_SINT64: "sint64",
}
WELL_KNOWN_DOCS = "https://protobuf.dev/reference/protobuf/google.protobuf/#"


def proto_files():
    files = []
    # PROTO_ROOT may be replaced by --proto-root.
    for d in PROTO_DIRS:
        full = os.path.join(PROTO_ROOT, d)
        if not os.path.isdir(full):
            continue
        for name in os.listdir(full):
            if name.endswith(".proto"):
                files.append(f"{d}/{name}")
    return sorted(files)


def compile_descriptors(files):
    protoc = os.environ.get("PROTOC") or shutil.which("protoc")
    if not protoc:
        sys.exit("gen_api_docs: protoc not found (apt-get install protobuf-compiler)")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "api.pb")
        cmd = [protoc, f"-I{PROTO_ROOT}"]
        if os.path.isfile("/usr/include/google/protobuf/struct.proto"):
            cmd.append("-I/usr/include")
        cmd += ["--include_source_info", f"--descriptor_set_out={out}"] + files
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"gen_api_docs: protoc failed:\n{r.stderr}")
        fds = descriptor_pb2.FileDescriptorSet()
        with open(out, "rb") as f:
            fds.ParseFromString(f.read())
    return fds


def clean_comment(text):
    """protoc keeps the text after `//` of each line; drop the common indent."""
    if not text:
        return []
    lines = [l.rstrip() for l in text.split("\n")]
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    indent = min((len(l) - len(l.lstrip()) for l in lines if l.strip()), default=0)
    return [l[indent:] for l in lines]


def to_inline(lines):
    """Joins comment lines into one Markdown table cell.

    Lines starting with "- " (lists in comments) keep a <br> before them so
    the list stays readable; everything else is reflowed.
    """
    out = ""
    for l in lines:
        s = l.strip()
        if not s:
            out += "<br>"
            continue
        if s.startswith("- ") and out:
            out += "<br>" + s
        else:
            out += (" " if out and not out.endswith("<br>") else "") + s
    return out.replace("|", "\\|")


def to_block(lines):
    """Comment lines as a Markdown paragraph block (lists kept)."""
    return "\n".join(lines)


class Comments:
    def __init__(self, fdp):
        self.by_path = {}
        for loc in fdp.source_code_info.location:
            self.by_path[tuple(loc.path)] = loc

    def leading(self, path):
        loc = self.by_path.get(tuple(path))
        return clean_comment(loc.leading_comments) if loc else []

    def trailing(self, path):
        loc = self.by_path.get(tuple(path))
        return clean_comment(loc.trailing_comments) if loc else []

    def detached(self, path):
        loc = self.by_path.get(tuple(path))
        if not loc:
            return []
        out = []
        for c in loc.leading_detached_comments:
            out += clean_comment(c) + [""]
        return out[:-1] if out else []

    def doc(self, path):
        """Leading comment, then trailing comment, as lines."""
        lead, trail = self.leading(path), self.trailing(path)
        if lead and trail:
            return lead + trail
        return lead or trail

    def span(self, path):
        loc = self.by_path.get(tuple(path))
        return list(loc.span) if loc else None


SECTION_RE = re.compile(r"^-{2,}\s*(.*?)\s*-*\s*$")


def split_section(lines):
    """('Title', rest) when the comment starts with a `--- Title ---` line."""
    if lines and SECTION_RE.match(lines[0]) and SECTION_RE.match(lines[0]).group(1):
        return SECTION_RE.match(lines[0]).group(1), lines[1:]
    return None, lines


def anchor(full_name):
    return full_name.replace(".", "-").lower()


def names_field(comment_lines, field_name):
    """True when a shared comment mentions the field by name (or singular/plural)."""
    text = " ".join(comment_lines).lower()
    words = set(re.findall(r"[a-z0-9_]+", text))
    name = field_name.lower()
    variants = {name, name.rstrip("s"), name + "s", name.replace("_", " ")}
    if name.replace("_", " ") in text and "_" in name:
        return True
    return any(v in words for v in variants)


class Generator:
    def __init__(self, fds, files):
        self.fds = fds
        self.wanted = set(files)
        self.files = [f for f in fds.file if f.name in self.wanted]
        self.files.sort(key=lambda f: f.name)
        # Full name (".pkg.Msg") -> (kind, descriptor) of every type we render.
        self.types = {}
        self.map_entries = {}
        for f in self.files:
            prefix = "." + f.package if f.package else ""
            for m in f.message_type:
                self._index_message(prefix, m)
            for e in f.enum_type:
                self.types[f"{prefix}.{e.name}"] = ("enum", e)
        self.undocumented = []

    def _index_message(self, prefix, m):
        name = f"{prefix}.{m.name}"
        if m.options.map_entry:
            self.map_entries[name] = m
            return
        self.types[name] = ("message", m)
        for n in m.nested_type:
            self._index_message(name, n)
        for e in m.enum_type:
            self.types[f"{name}.{e.name}"] = ("enum", e)

    def type_ref(self, type_name):
        """Markdown for a message/enum type name (".pkg.Name")."""
        short = type_name.lstrip(".")
        if type_name in self.types:
            return f"[`{short}`](#{anchor(short)})"
        if type_name.startswith(".google.protobuf."):
            return f"[`{short}`]({WELL_KNOWN_DOCS}{short.rsplit('.', 1)[1].lower()})"
        return f"`{short}`"

    def field_type(self, f):
        if f.type in (FDP.TYPE_MESSAGE, FDP.TYPE_ENUM):
            if f.type_name in self.map_entries:
                entry = self.map_entries[f.type_name]
                k, v = entry.field[0], entry.field[1]
                return f"{self.field_type(k)} → {self.field_type(v)}"
            return self.type_ref(f.type_name)
        return f"`{SCALAR_NAMES[f.type]}`"

    def field_label(self, m, f):
        if f.type_name in self.map_entries:
            return "map"
        if f.proto3_optional:
            return "optional"
        if f.HasField("oneof_index"):
            return f"oneof `{m.oneof_decl[f.oneof_index].name}`"
        if f.label == FDP.LABEL_REPEATED:
            return "repeated"
        return ""

    # --- rendering -------------------------------------------------------

    def render(self):
        out = []
        w = out.append
        w("# API reference")
        w("")
        w("<!-- Generated by scripts/gen_api_docs.py from the comments in proto/; "
          "do not edit by hand. Regenerate: python3 scripts/gen_api_docs.py docs/API.md -->")
        w("")
        w("debias speaks gRPC; the services below are defined in `proto/` (package "
          "`debias.v1`, plus the standard `grpc.health.v1` health service). Every "
          "text on this page is a comment from the .proto files. Errors are gRPC "
          "status codes; the limits named here (max_candidates, max_k, ...) are "
          "server flags (`debiasd --help`, docs/CLI.md). Source files: "
          + ", ".join(f"`proto/{f.name}`" for f in self.files) + ".")
        w("")
        services = [(f, i, s) for f in self.files for i, s in enumerate(f.service)]
        w("## Services")
        w("")
        for f, _, s in services:
            full = f"{f.package}.{s.name}"
            w(f"- [`{full}`](#{anchor(full)}): " + ", ".join(m.name for m in s.method))
        w("")
        self.render_errors(w)
        for f, i, s in services:
            self.render_service(w, f, i, s)
        w("## Messages")
        w("")
        for f in self.files:
            msgs = [(i, m) for i, m in enumerate(f.message_type)]
            if not msgs:
                continue
            c = Comments(f)
            for i, m in msgs:
                self.render_message(w, f, c, [FILE_MESSAGE, i], f.package, m)
        enums = []
        for f in self.files:
            c = Comments(f)
            for i, e in enumerate(f.enum_type):
                enums.append((f.package, e, c, [FILE_ENUM, i]))
            for i, m in enumerate(f.message_type):
                self._collect_enums(f.package, m, c, [FILE_MESSAGE, i], enums)
        if enums:
            w("## Enums")
            w("")
            for prefix, e, c, path in enums:
                self.render_enum(w, prefix, e, c, path)
        while out and out[-1] == "":
            out.pop()
        return "\n".join(out) + "\n"

    def render_errors(self, w):
        """The error-code table, from proto/debias/v1/error_codes.tsv (which
        tests/server/error_table_test.cc sends to a real server row by row)."""
        path = os.path.join(PROTO_ROOT, "debias", "v1", "error_codes.tsv")
        if not os.path.exists(path):
            return
        w("## Error codes")
        w("")
        w("Every error is a gRPC status code with a message naming the field and the "
          "expected range. The same kind of mistake gets the same code on every RPC; "
          "a training job that starts and then fails ends as a model in state "
          "\"failed\" whose `error_code` is the code from this table. The table is "
          "`proto/debias/v1/error_codes.tsv`; `tests/server/error_table_test.cc` "
          "sends each row's request to a real server and checks the code.")
        w("")
        w("| RPC | code | when |")
        w("|---|---|---|")
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if not line or line.startswith("#"):
                    continue
                rpc, code, trigger = line.split("\t")[:3]
                rpc = "every RPC" if rpc == "*" else f"`{rpc}`"
                w(f"| {rpc} | `{code}` | {trigger.replace('|', '/')} |")
        w("")

    def _collect_enums(self, prefix, m, c, path, enums):
        name = f"{prefix}.{m.name}"
        for i, e in enumerate(m.enum_type):
            enums.append((name, e, c, path + [MSG_ENUM, i]))
        for i, n in enumerate(m.nested_type):
            if not n.options.map_entry:
                self._collect_enums(name, n, c, path + [MSG_NESTED, i], enums)

    def render_service(self, w, f, index, s):
        c = Comments(f)
        full = f"{f.package}.{s.name}"
        w(f'### <a id="{anchor(full)}"></a>{full}')
        w("")
        doc = c.doc([FILE_SERVICE, index])
        if not doc:
            # The file header (the comment above `syntax`) describes the service.
            doc = c.detached([FILE_SYNTAX]) or c.leading([FILE_SYNTAX])
        if doc:
            w(to_block(doc))
            w("")
        w(f"Defined in `proto/{f.name}`.")
        w("")
        w("| RPC | request | response | streaming | description |")
        w("|---|---|---|---|---|")
        for j, m in enumerate(s.method):
            mdoc = c.doc([FILE_SERVICE, index, SERVICE_METHOD, j])
            if not mdoc:
                self.undocumented.append(f"rpc {full}.{m.name}")
            if m.client_streaming and m.server_streaming:
                streaming = "bidirectional"
            elif m.client_streaming:
                streaming = "client"
            elif m.server_streaming:
                streaming = "server"
            else:
                streaming = "unary"
            w(f"| `{m.name}` | {self.type_ref(m.input_type)} | {self.type_ref(m.output_type)} "
              f"| {streaming} | {to_inline(mdoc) or '—'} |")
        w("")

    def render_message(self, w, f, c, path, prefix, m):
        if m.options.map_entry:
            return
        full = f"{prefix}.{m.name}"
        w(f'### <a id="{anchor(full)}"></a>{full}')
        w("")
        doc = c.doc(path)
        if doc:
            w(to_block(doc))
            w("")
        if not m.field:
            w("No fields.")
            w("")
        else:
            w("| field | number | type | label | description |")
            w("|---|---:|---|---|---|")
            prev_doc, prev_end_line, prev_name = None, None, None
            for j, fld in enumerate(m.field):
                fpath = path + [MSG_FIELD, j]
                lead = c.leading(fpath)
                section, lead = split_section(lead)
                trail = c.trailing(fpath)
                doc = lead + trail if lead and trail else (lead or trail)
                span = c.span(fpath)
                start_line = span[0] if span else None
                if section:
                    w(f"| **{section.replace('|', chr(92) + '|')}** | | | | |")
                cell = to_inline(doc)
                if doc:
                    prev_doc, prev_name = doc, fld.name
                elif (prev_doc and prev_end_line is not None and start_line is not None
                      and start_line == prev_end_line + 1 and names_field(prev_doc, fld.name)):
                    # Shares the comment above (which names it); keep prev_doc so
                    # a third field of the group can share it as well.
                    cell = f"(with `{prev_name}`) {to_inline(prev_doc)}"
                else:
                    prev_doc, prev_name = None, None
                    self.undocumented.append(f"field {full}.{fld.name}")
                if span:
                    prev_end_line = span[2] if len(span) == 4 else span[0]
                w(f"| `{fld.name}` | {fld.number} | {self.field_type(fld)} "
                  f"| {self.field_label(m, fld)} | {cell or '—'} |")
            w("")
        for i, n in enumerate(m.nested_type):
            self.render_message(w, f, c, path + [MSG_NESTED, i], full, n)

    def render_enum(self, w, prefix, e, c, path):
        full = f"{prefix}.{e.name}"
        w(f'### <a id="{anchor(full)}"></a>{full}')
        w("")
        doc = c.doc(path)
        if doc:
            w(to_block(doc))
            w("")
        w("| value | number | description |")
        w("|---|---:|---|")
        for j, v in enumerate(e.value):
            vdoc = c.doc(path + [ENUM_VALUE, j])
            w(f"| `{v.name}` | {v.number} | {to_inline(vdoc) or '—'} |")
        w("")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("output", nargs="?", default=os.path.join(REPO, "docs", "API.md"))
    ap.add_argument("--check", action="store_true",
                    help="exit 1 if OUTPUT is not what would be generated")
    ap.add_argument("--undocumented", action="store_true",
                    help="print the RPCs and fields that have no comment")
    ap.add_argument("--proto-root", default=None,
                    help="read the .proto files from here instead of the repository's "
                         "proto/ (e.g. an export of one commit's proto/)")
    args = ap.parse_args()
    if args.proto_root:
        global PROTO_ROOT
        PROTO_ROOT = os.path.abspath(args.proto_root)

    files = proto_files()
    if not files:
        sys.exit(f"gen_api_docs: no .proto files under {PROTO_ROOT}")
    gen = Generator(compile_descriptors(files), files)
    text = gen.render()

    if args.undocumented:
        print("\n".join(gen.undocumented))
        return 0
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current != text:
            print(f"gen_api_docs: {args.output} is out of date; run "
                  f"python3 scripts/gen_api_docs.py {args.output}", file=sys.stderr)
            return 1
        return 0
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
