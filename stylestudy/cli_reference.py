"""The command-line reference (docs/reference/cli.md), generated from the argparse parser that
``stylestudy`` runs: every subcommand, every option with its help and default, and the old
spellings that still work.

Regenerate after changing a command: ``python -m stylestudy.cli_reference > docs/reference/cli.md``
(a test fails while the file is out of date).
"""

from __future__ import annotations

import argparse

from stylestudy.cli import build_parser
from stylestudy.engine.study.options import DeprecatedAlias


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """name -> (one-line help, its parser), by name."""
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    return {name: (helps.get(name, ""), action.choices[name]) for name in sorted(action.choices)}


def usage(parser: argparse.ArgumentParser) -> str:
    """The usage line at a fixed width, so the reference does not depend on the terminal."""
    formatter = argparse.HelpFormatter(parser.prog, width=10_000)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _row(action: argparse.Action, aliases: dict[str, list[str]], required_in_group: set[str]) -> str:
    names = ", ".join(f"`{n}`" for n in action.option_strings) or f"`{action.metavar or action.dest}`"
    old = aliases.get(action.dest, [])
    if old and action.option_strings:
        names += " (deprecated: " + ", ".join(f"`{n}`" for n in old) + ")"
    if action.option_strings and action.nargs != 0:
        value = action.metavar or (("{" + ",".join(map(str, action.choices)) + "}") if action.choices
                                   else action.dest.upper())
    else:
        value = ""
    default = action.default
    required = action.required or action.dest in required_in_group
    shown = "" if default is None or default is False or default == argparse.SUPPRESS or required else f"`{default}`"
    if isinstance(default, (list, tuple)):
        shown = f"`{','.join(map(str, default))}`"
    return f"| {names} | {_cell(str(value))} | {'required' if required else shown} | {_cell(action.help or '')} |"


def cli_reference() -> str:
    """Markdown: a section per subcommand with its usage and a table of its arguments."""
    parser = build_parser()
    lines = ["# Command-line reference", "",
             "Generated from the `stylestudy` parser by `python -m stylestudy.cli_reference`; do not edit by hand. "
             "`stylestudy COMMAND --help` prints the same. Old spellings marked deprecated still work and print "
             "one line saying what to write instead.", "",
             "| command | what it does |", "|---|---|"]
    commands = subcommands(parser)
    lines += [f"| [`{name}`](#stylestudy-{name}) | {_cell(text)} |" for name, (text, _) in commands.items()]
    lines.append("")
    for name, (text, command) in commands.items():
        lines += [f"## stylestudy {name}", "", _cell(command.description or text), "", "```text",
                  usage(command), "```", ""]
        aliases: dict[str, list[str]] = {}
        for action in command._actions:
            if isinstance(action, DeprecatedAlias):
                aliases.setdefault(action.dest, []).extend(action.option_strings)
        # a renamed option's group (add_renamed_option): the new spelling is required when the group is
        required_in_group = {g._group_actions[0].dest for g in command._mutually_exclusive_groups
                             if g.required and len({a.dest for a in g._group_actions}) == 1}
        groups = [(g.title, [a for a in g._group_actions if a.help != argparse.SUPPRESS
                             and not isinstance(a, argparse._HelpAction)]) for g in command._action_groups]
        for title, actions in groups:
            if not actions:
                continue
            if title not in ("positional arguments", "options"):
                lines += [f"*{title}*", ""]
            lines += ["| argument | value | default | what it does |", "|---|---|---|---|"]
            lines += [_row(a, aliases, required_in_group) for a in actions]
            lines.append("")
        if command.epilog:
            lines += [_cell(command.epilog), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(cli_reference(), end="")
