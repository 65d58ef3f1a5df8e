#!/usr/bin/env python3
"""Generates docs/api.md, evnet's API reference, from the `///` comments of the public headers.

    python3 docs/generate_api.py           # rewrites docs/api.md
    python3 docs/generate_api.py --check   # fails if a public name has no comment, or if
                                           # docs/api.md differs from what it would write

Public: what include/evnet/** declares outside detail/ folders and namespaces named detail,
plus the public members of the handle bases net::Socket, tls::Socket, net::Server and
tls::Server inherit (detail/socket_handle.hpp, detail/server_handle.hpp), and the events of each
emitter (its Event<"name", void(...)> list). The reader is a small scanner of the clang-formatted
headers, not a compiler: it runs in well under a second, and a signature appears as written.

Rules it checks: every public class, function, alias, variable and enum has a `///` comment
above it; every public data member has a comment (above it or at the end of its line); an
overload right after a documented one of the same name shares its comment; copy/move members,
destructors and `= default` / `= delete` declarations need none.
"""
import argparse
import difflib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INCLUDE = ROOT / "include"
OUTPUT = ROOT / "docs" / "api.md"
REGENERATE = "python3 docs/generate_api.py"

# Classes in detail/ whose public members users call through the public classes.
HANDLE_BASES = {
    "evnet/detail/socket_handle.hpp": ("SocketHandle", "net::Socket and tls::Socket"),
    "evnet/detail/server_handle.hpp": ("ServerHandle", "net::Server and tls::Server"),
}
# The emitters: the public class, and the Event lists (the declarations that hold them, by
# file and name) whose events it emits, in order.
EMITTERS = [
    ("net::Socket", [("evnet/detail/socket_impl.hpp", "BasicSocketEmitter")]),
    ("tls::Socket", [("evnet/detail/socket_impl.hpp", "BasicSocketEmitter"),
                     ("evnet/detail/tls_layer.hpp", "Emitter")]),
    ("net::Server", [("evnet/detail/server_impl.hpp", "BasicServerEmitter")]),
    ("tls::Server", [("evnet/detail/server_impl.hpp", "BasicServerEmitter"),
                     ("evnet/tls/server.hpp", "Emitter")]),
    ("Process", [("evnet/process.hpp", "ProcessEmitter")]),
]
ALWAYS_EVENTS = ['Event<"newListener", void(std::string_view eventName)>',
                 'Event<"removeListener", void(std::string_view eventName)>']

ACCESS = re.compile(r"^(public|private|protected)$")
CLASS_HEAD = re.compile(r"^(?:template\s*<.*>\s*)?(class|struct|union)\s+(?:\[\[.*?\]\]\s*)?(\w+)"
                        r"(?:\s+final)?\s*(?::.*)?$", re.S)
ENUM_HEAD = re.compile(r"^enum(?:\s+(?:class|struct))?\s+(\w+)")
NAMESPACE_HEAD = re.compile(r"^(?:inline\s+)?namespace\s*([\w:]*)")
EVENT = re.compile(r'Event<"([^"]*)",\s*(void\((?:[^()]|\([^()]*\))*\))>')


class Decl:
    def __init__(self, file, scope, text, doc, trailing, line, kind, name):
        self.file, self.scope, self.text, self.doc = file, scope, text, doc
        self.trailing, self.line, self.kind, self.name = trailing, line, kind, name


class Scanner:
    """Splits a header into declarations, each with its comments and its scope."""

    def __init__(self, path):
        self.path = path
        self.rel = path.relative_to(INCLUDE).as_posix()
        self.src = path.read_text()
        self.decls = []

    def scan(self):
        src, i, n = self.src, 0, len(self.src)
        # scope entries: (kind, name, public)
        scopes = [("file", "", True)]
        stmt, stmt_line, doc, plain, trailing = "", 0, [], [], []
        line = 1

        def public_here():
            return all(s[2] for s in scopes)

        def flush(end_text=""):
            nonlocal stmt, doc, plain, trailing
            text = " ".join((stmt + end_text).split())
            if text and text != ";":
                self.add(scopes, text, doc, plain, trailing, stmt_line, public_here())
            stmt, doc, plain, trailing = "", [], [], []

        while i < n:
            c = src[i]
            if c == "\n":
                line += 1
                if src.startswith("\n", i + 1) or src[i + 1:i + 2] == "" :
                    pass
                # a blank line ends a comment block that no declaration followed
                j = i + 1
                while j < n and src[j] in " \t":
                    j += 1
                if j < n and src[j] == "\n" and not stmt.strip():
                    doc, plain = [], []
                stmt += " "
                i += 1
                continue
            if c == "#" and not stmt.strip():  # preprocessor line (with continuations)
                while i < n and src[i] != "\n":
                    if src[i] == "\\" and src[i + 1:i + 2] == "\n":
                        i += 1
                        line += 1
                    i += 1
                continue
            if src.startswith("//", i):
                end = src.find("\n", i)
                end = n if end < 0 else end
                comment = src[i:end]
                if stmt.strip():
                    trailing.append(comment.lstrip("/").strip())
                elif comment.startswith("///"):
                    doc.append(comment[3:].removeprefix(" ").rstrip())
                else:
                    plain.append(comment[2:].strip())
                i = end
                continue
            if src.startswith("/*", i):
                end = src.find("*/", i) + 2
                line += src.count("\n", i, end)
                i = end
                continue
            if c in "\"'":
                j = self.skip_literal(i)
                if not stmt.strip():
                    stmt_line = line
                stmt += src[i:j]
                i = j
                continue
            if not stmt.strip() and not c.isspace():
                stmt_line = line
            if c == "(":
                j = self.skip_group(i, "(", ")")
                stmt += src[i:j]
                line += src.count("\n", i, j)
                i = j
                continue
            if c == ":" and ACCESS.match(stmt.strip()) and not src.startswith("::", i):
                kind, name, _ = scopes[-1]
                scopes[-1] = (kind, name, stmt.strip() == "public")
                stmt, doc, plain, trailing = "", [], [], []
                i += 1
                continue
            if c == ";":
                i += 1
                k = i  # a comment at the end of the line belongs to this declaration
                while k < n and src[k] in " \t":
                    k += 1
                if src.startswith("//", k):
                    end = src.find("\n", k)
                    trailing.append(src[k:end].lstrip("/").strip())
                    i = end
                flush(";")
                continue
            if c == "}":  # closes the innermost namespace or class
                flush()
                scopes.pop()
                i += 1
                continue
            if c == "{":
                head = " ".join(stmt.split())
                m_ns = NAMESPACE_HEAD.match(head)
                m_class = CLASS_HEAD.match(head) if "(" not in head.split(":")[0] else None
                m_enum = ENUM_HEAD.match(head)
                if m_ns and not head.startswith("namespace {") and "=" not in head:
                    names = [p for p in m_ns.group(1).split("::") if p]
                    stmt, doc, plain, trailing = "", [], [], []
                    # `namespace a::b {` is one scope closed by one brace
                    public = "detail" not in names or self.rel in HANDLE_BASES
                    scopes.append(("namespace", "::".join(names), public))
                    i += 1
                    continue
                if m_enum:
                    j = self.skip_group(i, "{", "}")
                    body = src[i:j]
                    line += body.count("\n")
                    self.add(scopes, head + " " + self.enum_body(body) + ";", doc, plain,
                             trailing, stmt_line, public_here())
                    stmt, doc, plain, trailing = "", [], [], []
                    i = j
                    while i < n and src[i] in " \t":
                        i += 1
                    if src[i:i + 1] == ";":
                        i += 1
                    continue
                if m_class:
                    kind = m_class.group(1)
                    self.add(scopes, head, doc, plain, trailing, stmt_line, public_here(),
                             kind="class")
                    stmt, doc, plain, trailing = "", [], [], []
                    scopes.append((kind, m_class.group(2), kind != "class"))
                    i += 1
                    continue
                # a function body or a brace initializer: skip it, then look at what follows
                j = self.skip_group(i, "{", "}")
                line += src.count("\n", i, j)
                k = j
                while k < n and src[k] in " \t\n":
                    k += 1
                if src[k:k + 1] in (";", ",", "{", "(", ".", ")"):
                    group = src[i:j]
                    stmt += group if "\n" not in group and len(group) <= 40 else "{...}"
                    i = j
                    continue
                flush()
                i = j
                continue
            stmt += c
            i += 1
        return self

    def skip_literal(self, i):
        quote, j = self.src[i], i + 1
        while self.src[j] != quote:
            j += 2 if self.src[j] == "\\" else 1
        return j + 1

    def skip_group(self, i, open_, close):
        depth, j, src = 0, i, self.src
        while j < len(src):
            c = src[j]
            if c in "\"'":
                j = self.skip_literal(j)
                continue
            if src.startswith("//", j):
                j = src.find("\n", j)
                continue
            if c == open_:
                depth += 1
            elif c == close:
                depth -= 1
                if depth == 0:
                    return j + 1
            j += 1
        raise SystemExit(f"{self.path}: unbalanced {open_}")

    @staticmethod
    def enum_body(body):
        values = []
        for raw in body[1:-1].split("\n"):
            code = raw.split("//")[0].strip()
            comment = raw.split("//", 1)[1].lstrip("/").strip() if "//" in raw else ""
            if code:
                values.append(code.rstrip(","))
            if comment and values:
                values[-1] += "  // " + comment
        return "{ " + ", ".join(v.split("  //")[0] for v in values) + " }"

    def add(self, scopes, text, doc, plain, trailing, line, public, kind=None):
        if not public:
            return
        if text.startswith(("using namespace", "friend ", "static_assert", "namespace ")):
            return
        if re.match(r"^template\s*<>\s*struct std::", text):  # a std trait specialized
            return
        if re.match(r"^using\s+[\w:]+::(\w+)::\1;$", text):  # inherited constructors
            return
        if re.match(r"^template\s*<.*>\s*(class|struct)\s+\w+<", text):
            return  # a partial specialization: documented by its primary template
        text = re.sub(r"([(<]) ", r"\1", signature(text))
        if re.match(r"^(template\s*<.*?>\s*)?(class|struct)\s+\w+;$", text) and not doc:
            return  # a forward declaration
        if text.startswith("template <") and text.endswith(">"):
            return
        owner = "::".join(s[1] for s in scopes if s[1] and s[0] != "namespace")
        ns = "::".join(s[1] for s in scopes if s[0] == "namespace" and s[1])
        in_class = scopes[-1][0] in ("class", "struct", "union")
        name = declared_name(text)
        if kind is None:
            if text.startswith("enum"):
                kind = "enum"
            elif re.match(r"^(template\s*<.*?>\s*)?using\s", text):
                kind = "alias"
            elif is_function(text):
                kind = "function"
            else:
                kind = "field" if in_class and not re.search(r"\bstatic\b", text) else "variable"
        self.decls.append(Decl(self.rel, (ns, owner), text, list(doc),
                               list(plain) + list(trailing), line, kind, name))


def signature(text):
    """A declaration as the reference shows it: no body, no member initializer list."""
    if text.endswith("{...}") or text.endswith("{}"):
        text = text[: text.rfind("{")].rstrip()
    if is_function(text) and not text.endswith(";"):
        text = re.sub(r"\)((?:\s*(?:const|noexcept|override|final))*)\s:\s[^:].*$", r")\1", text)
        return text.rstrip() + ";"
    return text


def is_function(text):
    t = re.sub(r"^template\s*<.*?>\s*(requires\s*\(.*?\)\s*)?", "", text)
    t = re.sub(r"<[^<>]*(<[^<>]*>[^<>]*)*>", "<>", t)  # template arguments
    head = t.split("=")[0] if not re.search(r"operator\s*[=!<>]", t) else t
    return "(" in head and not re.match(r"^(static\s+)?(inline\s+)?(constexpr\s+)?\w[\w:<>]*\s+\w+\{", t)


def declared_name(text):
    t = re.sub(r"^template\s*<.*?>\s*", "", text)
    if m := re.match(r"^using\s+(\w+)", t):
        return m.group(1)
    if m := re.match(r"^(?:class|struct|union|enum(?:\s+class)?)\s+(\w+)", t):
        return m.group(1)
    if m := re.search(r"(operator\s*(?:\(\)|[^\s(]+|\w+))\s*\(", t):
        return m.group(1).replace(" ", "")
    if m := re.search(r"(~?\w+)\s*\(", t.split("=")[0] if "(" in t.split("=")[0] else t):
        if "(" in t.split("=")[0]:
            return m.group(1)
    names = re.findall(r"(\w+)\s*(?:=|\{|;|\[)", t)
    return names[0] if names else t


def exempt(decl, class_name):
    t = decl.text
    if t.endswith(("= delete;", "= default;")):
        return True
    if decl.name.startswith("~"):
        return True
    if decl.kind == "function" and decl.name in (class_name, "operator=") and (
            re.search(rf"\(\s*(const\s+)?{class_name}\s*&{{1,2}}\s*\w*\s*\)", t)):
        return True  # copy or move
    return False


def collect():
    decls, events = [], {}
    for path in sorted(INCLUDE.rglob("*.hpp")):
        rel = path.relative_to(INCLUDE).as_posix()
        scanner = Scanner(path)
        if "/detail/" in rel and rel not in HANDLE_BASES:
            pass
        else:
            scanner.scan()
            for d in scanner.decls:
                if "/detail/" in rel:
                    base = HANDLE_BASES[rel][0]
                    if d.scope[1].split("::")[0] != base:
                        continue
                decls.append(d)
        for owner, body in event_lists(scanner.src):
            events[(rel, owner)] = body
    return decls, events


def event_lists(src):
    """The Event<...> lists of a header, by the name of the alias that holds them."""
    found = []
    for m in re.finditer(r"using\s+(\w+)\s*=([^;]*?Event<\"[^;]*);", src):
        found.append((m.group(1), [(e.group(1), e.group(2)) for e in EVENT.finditer(m.group(2))]))
    return found


def undocumented(decls):
    missing, last = [], {}
    for d in decls:
        owner = d.scope[1].split("::")[-1]
        key = (d.file, d.scope)
        prev = last.get(key)
        last[key] = d
        if d.doc:
            continue
        if d.kind == "field" and d.trailing:
            continue
        if d.kind == "field" and prev is not None and prev.kind == "field" and not d.trailing \
                and d.line == prev.line + 1 and prev.trailing == [] and prev.doc:
            continue
        if prev is not None and prev.name == d.name and (prev.doc or getattr(prev, "grouped", False)):
            d.grouped = True
            continue
        if exempt(d, owner):
            continue
        missing.append(d)
    return missing


def title(decl):
    ns, owner = decl.scope
    parts = [p for p in ns.split("::") if p and p != "evnet"]
    return "::".join(parts + ([owner] if owner else []))


def render(decls, events):
    out = ["# evnet API reference", "",
           f"Generated from the `///` comments of `include/evnet/` by `{REGENERATE}`; do not edit.",
           "A CTest test (`api_reference`) fails when a public name has no comment or when this",
           "file is out of date. Names are in namespace `evnet`. The EventEmitter methods (`on`,",
           "`once`, `off`, `emit`, ...) of net::Socket, tls::Socket, net::Server, tls::Server and",
           "Process are EventEmitter's, listed under it.", ""]
    by_file = {}
    for d in decls:
        by_file.setdefault(d.file, []).append(d)
    for file in sorted(by_file, key=lambda f: ("/detail/" in f, f)):
        header = file if "/detail/" not in file else file
        if file in HANDLE_BASES:
            out.append(f"## Members of {HANDLE_BASES[file][1]}")
            out.append("")
            out.append(f"Declared in their common base, `{HANDLE_BASES[file][0]}` (`<{header}>`); "
                       "`Handle` is the class itself.")
        else:
            out.append(f"## `<{header}>`")
        out.append("")
        current = None
        for d in by_file[file]:
            where = title(d)
            if d.kind == "class":
                where = f"{where}::{d.name}" if where else d.name
            if d.scope[1] == "" and d.kind != "class":  # at namespace level: its own heading
                where = f"{where}::{d.name}" if where else d.name
            if file in HANDLE_BASES:
                where = HANDLE_BASES[file][1]
            if where != current:
                out.append(f"### `{where}`")
                out.append("")
            current = where
            text = d.text
            if d.kind == "field" and d.trailing:
                text += "  // " + " ".join(d.trailing)
            out.extend(["```cpp", text, "```"])
            if d.doc:
                out.append("")
                out.extend(d.doc)
            out.append("")
    out.append("## Events")
    out.append("")
    out.append("Every emitter also has " + " and ".join(f"`{e}`" for e in ALWAYS_EVENTS) + ".")
    out.append("")
    used = set()
    for public, sources in EMITTERS:
        out.append(f"### {public}")
        out.append("")
        for source in sources:
            used.add(source)
            if source not in events:
                raise SystemExit(f"docs/generate_api.py: no Event list {source[1]} in {source[0]}")
            for name, signature in events[source]:
                signature = " ".join(signature.split()).replace("( ", "(")
                out.append(f'- `Event<"{name}", {signature}>`')
        out.append("")
    for source in events:
        if source not in used and source[0] != "evnet/event_emitter.hpp":
            raise SystemExit(f"docs/generate_api.py: the Event list {source[1]} in {source[0]} "
                             f"belongs to no public class: add it to EMITTERS")
    return "\n".join(out).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    decls, events = collect()
    missing = undocumented(decls)
    text = render(decls, events)
    failed = False
    if missing:
        for d in missing:
            print(f"include/{d.file}:{d.line}: public name without a /// comment: {d.text}",
                  file=sys.stderr)
        failed = True
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            diff = difflib.unified_diff(current.splitlines(), text.splitlines(), "docs/api.md",
                                        "generated", lineterm="", n=1)
            print("\n".join(list(diff)[:40]), file=sys.stderr)
            print(f"docs/api.md is out of date: run `{REGENERATE}` and commit it", file=sys.stderr)
            failed = True
    else:
        OUTPUT.write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
