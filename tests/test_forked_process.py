"""Forked children handled as subprocess.Popen handles started ones (what a local run's worker pool relies on)."""

import signal
import subprocess
import sys
import threading
import time

import pytest

from beam_pipeline.processes.forked_process import ForkedProcess


def _exit_with_the_code_read_from_stdin():
  print('child: read', sys.stdin.readline().strip())
  sys.exit(int(sys.stdin.readline()))


def _raise():
  raise ValueError('raised in the child')


def _read_stdin_to_its_end():
  sys.stdin.read()


def test_a_child_reads_its_stdin_from_the_parent_prints_to_its_stderr_and_ends_with_its_exit_code(capfd):
  child = ForkedProcess(_exit_with_the_code_read_from_stdin)
  child.stdin.write(b'hello\n7\n')
  child.stdin.close()

  assert child.wait(timeout=10) == 7
  assert child.poll() == 7
  assert 'child: read hello' in capfd.readouterr().err


def test_a_child_that_raises_ends_with_1_and_prints_what_it_raised(capfd):
  child = ForkedProcess(_raise)

  assert child.wait(timeout=10) == 1
  assert 'ValueError: raised in the child' in capfd.readouterr().err


def test_waiting_for_a_running_child_times_out_and_terminate_ends_it():
  child = ForkedProcess(_read_stdin_to_its_end)
  try:
    with pytest.raises(subprocess.TimeoutExpired):
      child.wait(timeout=0.3)
    assert child.poll() is None
  finally:
    child.terminate()
  assert child.wait(timeout=10) == -signal.SIGTERM


def test_a_childs_stdin_ends_when_the_parent_closes_it_though_a_sibling_was_forked_after_it():
  first = ForkedProcess(_read_stdin_to_its_end)
  second = ForkedProcess(_read_stdin_to_its_end)  # forked holding a copy of the first one's pipe, which it closes
  try:
    first.stdin.close()
    assert first.wait(timeout=10) == 0
    assert second.poll() is None
  finally:
    second.stdin.close()
  assert second.wait(timeout=10) == 0


def test_a_poll_while_another_thread_waits_for_the_child_answers_at_once():
  child = ForkedProcess(_read_stdin_to_its_end)
  waiting = threading.Thread(target=child.wait)
  waiting.start()
  try:
    time.sleep(0.2)  # the other thread is in its wait
    assert child.poll() is None
  finally:
    child.stdin.close()
  waiting.join(10)
  assert not waiting.is_alive() and child.poll() == 0
