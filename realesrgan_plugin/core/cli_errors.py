"""One error style for every command line tool of the plugin.

Every failure a user can cause prints ONE line, ``error: <what> (<file/flag>): <how to fix>``, and
exits with 2 for a usage error (a flag, an option file, a missing input), 1 when items failed
(an unreadable image, weights that are not weights), 130 on Ctrl-C and 143 on SIGTERM. A
traceback is printed only with ``--debug``. The helpers are plain argparse and stdlib: importing
this module costs nothing, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


def format_error(what: str, where: str | None = None, fix: str | None = None) -> str:
    """``error: <what> (<where>): <fix>``, parts left out when not given; always one line."""
    text = f'error: {one_line(what)}'
    if where:
        text += f' ({where})'
    if fix:
        text += f': {one_line(fix)}'
    return text


def one_line(text: object) -> str:
    """Collapse a (possibly multi-line) message onto one line."""
    return ' '.join(str(text).split())


class CliError(Exception):
    """A failure the user can fix; ``run_cli`` prints it in the one style and exits ``exit_code``."""

    exit_code = EXIT_USAGE

    def __init__(self, what: str, where: str | None = None, fix: str | None = None, exit_code: int | None = None):
        super().__init__(what)
        self.what, self.where, self.fix = what, where, fix
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        return format_error(self.what, self.where, self.fix)


class UsageError(CliError):
    """A flag, option or input the command cannot run with (exit 2)."""

    exit_code = EXIT_USAGE


class FailedError(CliError):
    """The command ran but an item (image, weights file, video) failed (exit 1)."""

    exit_code = EXIT_FAILED


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs; ``run_cli`` exits 143 for it."""


def raise_on_sigterm() -> Any:
    """Turn SIGTERM into :class:`Terminated` (only possible in the main thread); returns the
    previous handler (None when none could be installed)."""

    def handler(signum, frame):  # noqa: ARG001
        raise Terminated(f'signal {signum}')

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread (e.g. called from a test runner's worker)
        return None


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown for every flag that has a value (switches and unset flags say nothing); the
    description and the examples keep their line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None or isinstance(action.default, bool) or 'default' in (action.help or ''):
            return action.help or ''
        return super()._get_help_string(action)


class CliArgumentParser(argparse.ArgumentParser):
    """argparse with the plugin's conventions.

    - every long flag is accepted in both spellings: the official underscore name and its hyphen
      alias (``--tile_pad`` / ``--tile-pad``), whichever is declared;
    - defaults appear in ``--help``, and ``examples`` are printed below the flags;
    - ``--debug`` (traceback on errors) is always there;
    - a usage error prints one line in the common style and exits 2.
    """

    def __init__(self, *args, examples: Sequence[str] = (), **kwargs) -> None:
        kwargs.setdefault('formatter_class', HelpFormatter)
        if examples:
            kwargs.setdefault('epilog', 'examples:\n' + '\n'.join(f'  {e}' for e in examples))
        super().__init__(*args, **kwargs)
        self.add_argument('--debug', action='store_true', help='print the traceback of an error')

    def add_argument(self, *names, **kwargs):
        return super().add_argument(*with_spelling_aliases(names), **kwargs)

    def add_mutually_exclusive_group(self, **kwargs):
        group = super().add_mutually_exclusive_group(**kwargs)
        plain_add = group.add_argument
        group.add_argument = lambda *names, **kw: plain_add(*with_spelling_aliases(names), **kw)
        return group

    def error(self, message: str):
        self.exit(EXIT_USAGE, format_error(message, self.prog, f'see {self.prog} --help') + '\n')


def with_spelling_aliases(names: Sequence[str]) -> list[str]:
    """``('-t', '--tile_pad')`` -> ``['-t', '--tile_pad', '--tile-pad']`` (and the reverse)."""
    out = list(names)
    for name in names:
        if name.startswith('--'):
            body = name[2:]
            for alias in ('--' + body.replace('-', '_'), '--' + body.replace('_', '-')):
                if alias not in out:
                    out.append(alias)
    return out


def run_cli(main: Callable[[list[str]], int], argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` and turn every way it can end into the common style and exit code.

    ``CliError`` -> its line and code; Ctrl-C -> 130, SIGTERM -> 143; any other exception -> one
    line naming it (exit 1), with the traceback only when ``--debug`` is among the arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = '--debug' in args
    previous = raise_on_sigterm()
    try:
        return main(args)
    except SystemExit as done:  # argparse: --help (0) or a usage error it has printed (2)
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(format_error(str(done.code)), file=sys.stderr)
        return EXIT_USAGE
    except CliError as err:
        _traceback_if(debug)
        print(err, file=sys.stderr)
        return err.exit_code
    except Terminated:
        _traceback_if(debug)
        print('error: terminated (SIGTERM): no partial output was left', file=sys.stderr)
        return EXIT_SIGTERM
    except KeyboardInterrupt:
        _traceback_if(debug)
        print('error: interrupted (Ctrl-C): no partial output was left', file=sys.stderr)
        return EXIT_SIGINT
    except Exception as err:
        _traceback_if(debug)
        what = f'{type(err).__name__}: {err}' if str(err) else type(err).__name__
        print(format_error(what, fix='rerun with --debug for the traceback'), file=sys.stderr)
        return EXIT_FAILED
    finally:
        if previous is not None:  # a caller in the same process (a test, a notebook) gets its handler back
            signal.signal(signal.SIGTERM, previous)


def help_or_entry(argv: Sequence[str] | None, build_parser: Callable[[], argparse.ArgumentParser], entry: str) -> int:
    """The glue of a command whose work needs torch or a framework: ``--help`` from the light
    ``build_parser`` (about 0.2 s instead of several seconds of imports), anything else handed to
    ``entry`` (``'package.module:function'``, imported only then) with the same arguments."""
    args = list(sys.argv[1:] if argv is None else argv)
    if '-h' in args or '--help' in args:
        build_parser().print_help()
        return 0
    module, _, function = entry.partition(':')
    return getattr(importlib.import_module(module), function)(args)


def _traceback_if(debug: bool) -> None:
    if debug:
        traceback.print_exc()


def quiet_opencv() -> None:
    """Silence OpenCV's own ``[ WARN ]`` lines (they break progress bars; our errors say more)."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


@contextmanager
def training_errors_as_one_line(workplace: str) -> Iterator[None]:
    """A damaged checkpoint (``ResumeError``) or a storage failure (full disk, I/O error) while
    training becomes one usage-error line naming the file (exit 2), as in both training entries.
    ``workplace`` is named only when a library's own writer gives no file name. A writer thread
    of a library (tensorboard's) that dies of the same failure prints no traceback of its own."""
    from realesrgan_plugin.core.atomic import (
        DiskWriteError,
        as_disk_write_error,
        is_disk_error,
        quiet_writer_thread_disk_errors,
    )
    from realesrgan_plugin.core.checkpoint import ResumeError

    quiet_writer_thread_disk_errors()
    try:
        yield
    except (ResumeError, DiskWriteError) as err:
        raise UsageError(str(err)) from err
    except Exception as err:
        if not is_disk_error(err):
            raise
        target = getattr(err, 'filename', None) or workplace
        raise UsageError(str(as_disk_write_error(target, err))) from err
