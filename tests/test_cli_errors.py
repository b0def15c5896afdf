"""The one error style shared by every CLI: format, exit codes, spellings, --debug."""

from __future__ import annotations

from realesrgan_plugin.core.cli_errors import (
    CliArgumentParser,
    FailedError,
    Terminated,
    UsageError,
    format_error,
    run_cli,
    with_spelling_aliases,
)

import pytest


def test_format_is_one_line():
    assert format_error('bad\nthing', '-t -5', 'use\n -t 0') == 'error: bad thing (-t -5): use -t 0'
    assert format_error('boom') == 'error: boom'


def test_spelling_aliases_both_ways():
    assert with_spelling_aliases(['-t', '--tile_pad']) == ['-t', '--tile_pad', '--tile-pad']
    assert with_spelling_aliases(['--batch-tiles']) == ['--batch-tiles', '--batch_tiles']
    p = CliArgumentParser(prog='x')
    p.add_argument('--tile_pad', type=int, default=10, help='context')
    assert p.parse_args(['--tile-pad', '3']).tile_pad == 3
    assert '(default: 10)' in p.format_help()


def _raises(err: BaseException):
    def main(argv):
        raise err

    return main


@pytest.mark.parametrize(
    ('err', 'code', 'line'),
    [
        (UsageError('bad flag', '-s 0', 'use -s 2'), 2, 'error: bad flag (-s 0): use -s 2'),
        (FailedError('not weights', 'x.pth'), 1, 'error: not weights (x.pth)'),
        (KeyboardInterrupt(), 130, 'error: interrupted (Ctrl-C)'),
        (Terminated(), 143, 'error: terminated (SIGTERM)'),
        (RuntimeError('deep\ninside'), 1, 'error: RuntimeError: deep inside: rerun with --debug'),
    ],
)
def test_exit_codes_and_one_line_without_traceback(capsys, err, code, line):
    assert run_cli(_raises(err), []) == code
    out = capsys.readouterr().err
    assert out.startswith(line) and out.count('\n') == 1 and 'Traceback' not in out


def test_debug_prints_the_traceback(capsys):
    assert run_cli(_raises(RuntimeError('x')), ['--debug']) == 1
    assert 'Traceback' in capsys.readouterr().err


def test_usage_error_of_argparse_is_one_line_exit_2(capsys):
    p = CliArgumentParser(prog='tool')
    p.add_argument('-n', type=int)
    assert run_cli(lambda argv: p.parse_args(argv) and 0, ['-n', 'x']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: argument -n: invalid int value') and '(tool): see tool --help' in err
    assert err.count('\n') == 1
