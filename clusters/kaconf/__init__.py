"""Reading keepalived.conf files vipanel did not write: parser, model mapping, reconcile.

Pure code: no database, no SSH, no Django models. See parser.py (syntax), model.py (what is
modelled and why the rest is carried through verbatim) and reconcile.py (one proposal for a
cluster from several nodes' files and live state).
"""

from clusters.kaconf.model import (
    Authentication,
    GlobalDefs,
    Instance,
    ParsedConfig,
    Script,
    SyncGroup,
    Track,
    Unmodelled,
    VirtualAddress,
    from_config,
    parse_file,
    parse_string,
    render_verbatim,
)
from clusters.kaconf.parser import (
    MAX_FILE_BYTES,
    MAX_FILES,
    MAX_INCLUDE_DEPTH,
    Config,
    Include,
    Node,
    ParseError,
    Skipped,
    SourceFile,
    parse,
    parse_text,
)

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_FILES",
    "MAX_INCLUDE_DEPTH",
    "Authentication",
    "Config",
    "GlobalDefs",
    "Include",
    "Instance",
    "Node",
    "ParseError",
    "ParsedConfig",
    "Script",
    "Skipped",
    "SourceFile",
    "SyncGroup",
    "Track",
    "Unmodelled",
    "VirtualAddress",
    "from_config",
    "parse",
    "parse_file",
    "parse_string",
    "parse_text",
    "render_verbatim",
]
