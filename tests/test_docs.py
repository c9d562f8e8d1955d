"""The documentation's commands and links are checked, so that a renamed option or a moved page fails a test.

Every invocation in a code block of README.md, docs/*.md and templates/README.md (``python -m beam_pipeline``,
``python -m beam_pipeline.<module>``, ``./run_*.sh``) may only use options its command declares; every relative link
resolves; every option of ``SiteStatsOptions`` is documented in docs/options.md. Needs no service.
"""

import argparse
import functools
import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from beam_pipeline import REPO_ROOT
from beam_pipeline.compat.beam import add_declared_arguments
from beam_pipeline.launch.dataflow_template import build_parser as dataflow_parser
from beam_pipeline.options.known_flags import unknown_options
from beam_pipeline.options.site_stats import SiteStatsOptions

PAGES = [REPO_ROOT / 'README.md', *sorted((REPO_ROOT / 'docs').glob('*.md')),
         REPO_ROOT / 'templates' / 'README.md']
FENCE = re.compile(r'^\s*```\s*(\w*)')
OUTPUT_BLOCKS = ('text', 'console')  # what a command prints, not what to type
# Where a documented command starts; group 1 names it.
COMMAND = re.compile(r'(?:^|(?<=[\s"\'(]))(?:\.venv/bin/)?(python -m beam_pipeline(?:\.[\w.]+)?|\./run_\w+\.sh)'
                     r'(?=\s|$|["\')])')
FLAG = re.compile(r'(?<![\w-])--[A-Za-z][\w-]*')
# A shell command ends at an operator that follows a blank; ``<topic>`` placeholders have none before ``>``.
COMMAND_END = re.compile(r'\s(?:&&|\|\||\||;|2?>>?)(?=\s|$)')
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
JOB_COMMANDS = ('python -m beam_pipeline', './run_flink.sh', './run_backfill.sh',
                'python -m beam_pipeline.launch.backfill')


def code_lines(text: str):
  """(line number, logical line) of every fenced code block but output blocks: ``\\`` continuations joined, and
  a Python string literal continued by the next line's literal (implicit concatenation) joined too."""
  in_block, checked, pending, start = False, False, '', 0
  for number, line in enumerate(text.splitlines(), 1):
    fence = FENCE.match(line)
    if fence:
      if pending:
        yield start, pending
      in_block, pending = not in_block, ''
      checked = in_block and fence.group(1) not in OUTPUT_BLOCKS
      continue
    if not checked:
      continue
    stripped = line.strip()
    tail = pending.rstrip()[-1:]
    if tail == '\\' or (tail and stripped and tail in '"\'' and stripped[0] in '"\''):
      pending = pending.rstrip().rstrip('\\') + ' ' + stripped
      continue
    if pending:
      yield start, pending
    pending, start = line, number
  if pending:
    yield start, pending


def without_comment(line: str) -> str:
  """The line up to a shell comment (a ``#`` after a blank, outside quotes)."""
  quote = None
  for index, char in enumerate(line):
    if quote:
      quote = None if char == quote else quote
    elif char in '"\'':
      quote = char
    elif char == '#' and (index == 0 or line[index - 1].isspace()):
      return line[:index]
  return line


def invocations(text: str):
  """(line number, command name, argument text) of every documented invocation in ``text``."""
  for number, line in code_lines(text):
    line = without_comment(line)
    if line.lstrip().startswith('#'):
      continue
    for match in COMMAND.finditer(line):
      rest = line[match.end():]
      end = COMMAND_END.search(rest)
      yield number, match.group(1), rest[:end.start()] if end else rest


def documented_commands():
  for page in PAGES:
    for number, name, arguments in invocations(page.read_text()):
      yield pytest.param(name, arguments, id=f'{page.relative_to(REPO_ROOT)}:{number}:{name}')


@functools.lru_cache(maxsize=None)
def help_flags(*command) -> frozenset:
  """The flags a command's ``--help`` prints."""
  done = subprocess.run([*command, '--help'], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True)
  return frozenset(FLAG.findall(done.stdout))


def script_text(name: str) -> str:
  return (REPO_ROOT / name.lstrip('./')).read_text()


def run_local_commands() -> set:
  """The first words ``./run_local.sh`` accepts, as its ``case`` lists them."""
  words = set()
  for pattern in re.findall(r'^\s*([\w|-]+)\)', script_text('./run_local.sh'), re.MULTILINE):
    words.update(pattern.split('|'))
  return words


def unknown_flags(name: str, arguments: str) -> list:
  """The flags in ``arguments`` that ``name`` does not declare."""
  flags = FLAG.findall(arguments)
  if name in JOB_COMMANDS:
    own = help_flags(sys.executable, '-m', 'beam_pipeline.launch.backfill') if 'backfill' in name else frozenset()
    return unknown_options([flag for flag in flags if flag not in own])
  if name == './run_dataflow.sh' or name == 'python -m beam_pipeline.launch.dataflow_template':
    known = frozenset(FLAG.findall(dataflow_parser().format_help()))
  elif name == './run_local.sh':
    words = arguments.split()
    if words and not words[0].startswith('-'):
      assert words[0] in run_local_commands(), f'./run_local.sh has no command {words[0]!r}'
    demo = not words or words[0].startswith('-')
    module = 'beam_pipeline.tools.demo' if demo else 'beam_pipeline.devservices'
    known = help_flags(sys.executable, '-m', module)
  elif name == './run_tests.sh':
    # Its own tiers, as the script matches them (a case pattern or a quoted word); any other flag goes to pytest.
    code = '\n'.join(line for line in script_text(name).splitlines() if not line.lstrip().startswith('#'))
    known = frozenset(re.findall(r'(--[\w-]+)["|)]', code)) | help_flags(sys.executable, '-m', 'pytest')
  elif name.startswith('./'):
    pytest.fail(f'{name} is documented but is not a command this checker knows: teach it the command\'s flags')
  else:
    module = name.split()[-1]
    assert importlib.util.find_spec(module) is not None, f'no module {module}'
    known = help_flags(sys.executable, '-m', module)
  return [flag for flag in flags if flag not in known]


@pytest.mark.parametrize('name,arguments', list(documented_commands()))
def test_documented_command_uses_only_declared_options(name, arguments):
  if name.startswith('./'):
    assert (REPO_ROOT / name[2:]).is_file(), f'{name} does not exist'
  assert unknown_flags(name, arguments) == [], f'{name}{arguments}'


def test_a_misspelt_option_is_caught():
  page = '```bash\n.venv/bin/python -m beam_pipeline --topic t \\\n    --keyspce k --bounded   # --not_a_flag\n```\n'
  [(_, name, arguments)] = list(invocations(page))
  assert unknown_flags(name, arguments) == ['--keyspce']


def test_commands_are_found_in_every_shape():
  page = ('```\n0 3 * * * cd /x && ./run_backfill.sh --dates yesterday --topic t >> out.jsonl 2>> err.log\n'
          'bash_command=("cd /x && ./run_backfill.sh --dates {{ ds }} "\n              "--keyspace k"),\n```\n')
  found = [(name, FLAG.findall(arguments)) for _, name, arguments in invocations(page)]
  assert found == [('./run_backfill.sh', ['--dates', '--topic']), ('./run_backfill.sh', ['--dates', '--keyspace'])]


def heading_anchors(page: Path) -> set:
  """GitHub's anchors for the page's headings."""
  anchors = set()
  for heading in re.findall(r'^#+\s+(.*)$', page.read_text(), re.MULTILINE):
    anchors.add(re.sub(r'[^\w\- ]', '', heading.strip().lower()).replace(' ', '-'))
  return anchors


@pytest.mark.parametrize('page', PAGES, ids=lambda page: str(page.relative_to(REPO_ROOT)))
def test_relative_links_resolve(page):
  broken = []
  for target in LINK.findall(page.read_text()):
    if re.match(r'[a-z]+:', target):
      continue  # http(s), mailto: not checked offline
    path, _, anchor = target.partition('#')
    resolved = (page.parent / path) if path else page
    if not resolved.exists():
      broken.append(target)
    elif anchor and resolved.suffix == '.md' and anchor not in heading_anchors(resolved):
      broken.append(target)
  assert broken == []


def test_every_declared_option_is_in_the_options_page():
  parser = argparse.ArgumentParser()
  add_declared_arguments(SiteStatsOptions, parser)
  declared = set(FLAG.findall(parser.format_usage()))
  documented = set(FLAG.findall((REPO_ROOT / 'docs' / 'options.md').read_text()))
  assert len(declared) > 30
  assert sorted(declared - documented) == []


def _yaml_blocks(page: Path):
  """The ```yaml blocks of a Markdown page, indented or not, as ``{key: value}``."""
  blocks, current = [], None
  for line in page.read_text().splitlines():
    fence = FENCE.match(line)
    if fence and current is not None:
      blocks.append(dict(entry.split(': ', 1) for entry in current))
      current = None
    elif fence:
      current = [] if fence.group(1) == 'yaml' else None
    elif current is not None:
      current.append(line.strip())
  return blocks


def _class_file_text(jar: Path) -> bytes:
  with zipfile.ZipFile(jar) as archive:
    return b''.join(archive.read(name) for name in archive.namelist() if name.endswith('.class'))


def test_the_checkpoint_storage_snippet_names_only_settings_the_pinned_flink_declares():
  from beam_pipeline.processes.jvm import resolve_jars
  jars = REPO_ROOT / '.local' / 'jars' / 'flink'
  resolve_jars(REPO_ROOT / 'services' / 'flink' / 'pom.xml', jars)
  declared = b''.join(_class_file_text(jar) for jar in jars.glob('flink-*.jar'))
  snippets = _yaml_blocks(REPO_ROOT / 'docs' / 'flink.md')
  assert any('state.checkpoints.dir' in snippet for snippet in snippets)
  for snippet in snippets:
    for key in snippet:
      assert key.encode() in declared, f'docs/flink.md: {key} is not a setting of the pinned Flink'
