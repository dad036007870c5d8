"""``{djjobs-commands}``: djjobs' management commands, rendered from their argparse parsers.

Each module in djjobs/management/commands is loaded as Django loads it, its parser built with
``create_parser("manage.py", name)``, and rendered as a section: the description, the usage
line and a table of the command's own options (the ones every Django command has, such as
--settings and --verbosity, are in the usage line only).
"""

import argparse
import importlib
import pkgutil

from django.core.management import load_command_class
from django.core.management.base import BaseCommand
from docutils import nodes
from sphinx.util.docutils import SphinxDirective

import djjobs.management.commands as commands_package

COMMON = {action.dest for action in BaseCommand().create_parser("manage.py", "x")._actions}


def _table(header, rows):
    group = nodes.tgroup(cols=len(header))
    group += [nodes.colspec(colwidth=w) for w in (25, 20, 55)]
    thead, tbody = nodes.thead(), nodes.tbody()
    for parent, cells in [(thead, header)] + [(tbody, r) for r in rows]:
        row = nodes.row()
        for cell in cells:
            row += nodes.entry("", cell if isinstance(cell, nodes.Node) else nodes.paragraph(text=cell))
        parent += row
    group += [thead, tbody]
    return nodes.table("", group)


def _options(parser):
    """The command's own options, as table rows: flags, default, help."""
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        if action.dest in COMMON:
            continue
        flags = ", ".join(action.option_strings) or (action.metavar or action.dest)
        if action.option_strings and action.nargs != 0:
            flags += " " + (action.metavar or action.dest.upper())
        if action.choices:
            flags += " {" + ",".join(map(str, action.choices)) + "}"
        default = "" if action.default in (None, False, argparse.SUPPRESS) else repr(action.default)
        help_text = " ".join((action.help or "").split())
        if "%(" in help_text:
            help_text = help_text % {**vars(action), "prog": parser.prog}
        rows.append([nodes.paragraph("", "", nodes.literal(text=flags)),
                     nodes.paragraph("", "", nodes.literal(text=default)) if default else nodes.paragraph(),
                     help_text])
    return rows


class CommandsDirective(SphinxDirective):
    def run(self):
        sections = []
        names = sorted(m.name for m in pkgutil.iter_modules(commands_package.__path__) if not m.name.startswith("_"))
        for name in names:
            module = importlib.import_module(f"{commands_package.__name__}.{name}")
            self.env.note_dependency(module.__file__)  # rebuild this page when the command changes
            parser = load_command_class("djjobs", name).create_parser("manage.py", name)
            section = nodes.section(ids=[nodes.make_id(f"command-{name}")])
            section += nodes.title("", "", nodes.literal(text=name))
            if parser.description:
                section += nodes.paragraph(text=" ".join(parser.description.split()))
            usage = parser.format_usage().strip().removeprefix("usage: ")
            section += nodes.literal_block(usage, usage, language="text")
            rows = _options(parser)
            if rows:
                section += _table(["option", "default", "what it does"], rows)
            sections.append(section)
        return sections


def setup(app):
    app.add_directive("djjobs-commands", CommandsDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
