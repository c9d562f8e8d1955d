"""The benchmark: the same pre-produced topic through every contender, one after another, each into a fresh keyspace.

    ./bench/run.sh [--messages 1000000] [--keys 10000] [--bad_ratio 0.01] [--workers N] [--only name,name]
                   [--rounds N]

Contenders: raw_kafka_python (the ceiling of a Python reader), raw_confluent_kafka (the same through librdkafka),
naive_python (the old Python loop), go_seed (the Go consumer we replace), pipeline_direct (bounded, local runner),
pipeline_direct_at_least_once (the same without the offset ledger), pipeline_direct_librdkafka (the same with
--kafka_client confluent), pipeline_streaming (streaming until the topic is drained), pipeline_streaming_2_copies
(two copies in one consumer group); these use --workers SDK worker processes (default: one per core);
pipeline_flink (bounded, on embedded Flink, its Python code in the submitting process), pipeline_flink_cluster
(bounded, on the local Flink session cluster) and pipeline_flink_cluster_streaming (a streaming job there, from its
submission until its group has committed the whole topic; pipeline_flink_cluster_streaming_at_least_once without
the offset ledger), all with Flink parallelism --workers; on the cluster the Python code runs in the
SDK worker pool. flink_java is their native peer: a plain Java Flink job (bench/flink_java, built with Maven when
its jar is missing or older than its sources) with the same contract, per-key sums per bundle and counter UPDATEs,
run on the same session cluster with the same parallelism until it has finished. For each: msgs/s, CPU seconds,
peak RSS of its process tree (for the Flink runs also the peak RSS of the Flink JVMs and the worker pool, which
are not in that tree), Cassandra writes, and whether the counters equal the expected sums; for the cluster runs
also the rate of the reading phase alone (without submission, deployment and the workers' start), for the
streaming copies the rate from the group settling on its first assignment to its last commit, and for the
pipelines the most offset ranges one partition's ledger row holds.
When flink_java ran, the table ends with each pipeline's rates as a multiple of flink_java's in the same round;
when both streaming contenders ran, with two copies' rates as a multiple of one copy's.
``--rounds N`` runs the contenders in turn N times over the same topic (alternating, so that a drift of the machine
falls on all of them). Each contender starts once the machine is quiet (under 0.3 cores busy over a second, 30 s at
most; each row notes the wait). Prints a table and writes bench/results/<time>.json and .png.
"""

import argparse
import datetime
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from beam_pipeline import REPO_ROOT

CONTENDERS = ['raw_kafka_python', 'raw_confluent_kafka', 'naive_python', 'go_seed', 'pipeline_direct',
              'pipeline_direct_at_least_once', 'pipeline_direct_librdkafka', 'pipeline_streaming', 'pipeline_streaming_2_copies',
              'pipeline_flink', 'pipeline_flink_cluster', 'pipeline_flink_cluster_streaming',
              'pipeline_flink_cluster_streaming_at_least_once', 'flink_java']


def _process_cpu_s(pid: int) -> float:
  """CPU seconds (user + system) one process has used so far; FileNotFoundError once it is gone."""
  with open(f'/proc/{pid}/stat') as stat:
    fields = stat.read().rsplit(')', 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')  # utime + stime


def _cpu_s_or_zero(pid: int) -> float:
  """_process_cpu_s, or 0 once the process is gone."""
  try:
    return _process_cpu_s(pid)
  except (FileNotFoundError, ProcessLookupError):
    return 0.0


def _tree_usage(pid: int, cpu_s_by_pid: dict) -> int:
  """Resident memory (KB) of a process and all its descendants, from /proc; records each one's CPU seconds so far
  in ``cpu_s_by_pid`` (a stopped job may not reap its worker processes, whose CPU rusage would then miss)."""
  total, pending = 0, [pid]
  while pending:
    current = pending.pop()
    try:
      with open(f'/proc/{current}/status') as status:
        total += next((int(line.split()[1]) for line in status if line.startswith('VmRSS:')), 0)
      cpu_s_by_pid[current] = _process_cpu_s(current)
      for task in os.listdir(f'/proc/{current}/task'):
        with open(f'/proc/{current}/task/{task}/children') as children:
          pending.extend(int(child) for child in children.read().split())
    except (FileNotFoundError, ProcessLookupError, PermissionError):
      continue
  return total


# Each contender starts on a quiet machine: dropping the last keyspace and creating the next keep Cassandra busy
# for a few seconds after the statements return (2.6-5.6 CPU seconds measured, flushes and compilation by its
# JIT), which would otherwise land on the first seconds of whichever contender runs next.
_QUIET_BUSY_CORES = 0.3
_QUIET_WAIT_MAX_S = 30.0


def _machine_busy_ticks() -> tuple:
  with open('/proc/stat') as stat:
    ticks = [int(field) for field in stat.readline().split()[1:]]
  idle = ticks[3] + ticks[4]  # idle and iowait
  return sum(ticks) - idle, sum(ticks)


def _busy_cores(before: tuple, after: tuple) -> float:
  """The cores the whole machine kept busy on average between two _machine_busy_ticks readings."""
  (busy_before, total_before), (busy_after, total_after) = before, after
  return (busy_after - busy_before) / max(total_after - total_before, 1) * (os.cpu_count() or 1)


def wait_until_quiet() -> float:
  """Waits until the whole machine used under _QUIET_BUSY_CORES over one second (at most _QUIET_WAIT_MAX_S);
  returns the seconds waited."""
  started = time.monotonic()
  while time.monotonic() - started < _QUIET_WAIT_MAX_S:
    before = _machine_busy_ticks()
    time.sleep(1)
    if _busy_cores(before, _machine_busy_ticks()) < _QUIET_BUSY_CORES:
      break
  return round(time.monotonic() - started, 1)


def local_service_pids() -> Dict[str, int]:
  """The pids of the project's local Kafka and Cassandra (``./run_local.sh up``), those that run."""
  from beam_pipeline.processes.local_process import LocalProcess
  pids = {name: LocalProcess(name, REPO_ROOT / '.local').pid() for name in ('kafka', 'cassandra')}
  return {name: pid for name, pid in pids.items() if pid is not None}


def measure(command: List[str], log_path: Path, stop_when: Optional[Callable[[], bool]] = None,
            timeout_s: float = 7200, services: Sequence[int] = (), watched: Dict[str, int] = None) -> dict:
  """Runs ``command``; returns wall and CPU seconds of its process tree, peak RSS of the tree, its stdout, the
  peak RSS of the long-running ``services`` processes it uses (the Flink JVMs), the CPU seconds each ``watched``
  process (by name) used meanwhile, and the cores the whole machine kept busy on average."""
  watched = watched or {}
  with tempfile.TemporaryFile() as out, open(log_path, 'ab') as log:
    watched_before = {name: _cpu_s_or_zero(pid) for name, pid in watched.items()}
    machine_before = _machine_busy_ticks()
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=out, stderr=log, cwd=REPO_ROOT)
    peak, services_peak, cpu_s_by_pid = [0], [0], {}
    finished = threading.Event()

    def sample():
      while not finished.is_set():
        peak[0] = max(peak[0], _tree_usage(process.pid, cpu_s_by_pid))
        services_peak[0] = max(services_peak[0], sum(_tree_usage(pid, {}) for pid in services))
        finished.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    usage, stopping = None, False
    try:
      while usage is None:
        # wait4 rather than Popen.poll: it reaps the child and reports its (and its reaped children's) usage.
        pid, status, resources = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
          usage, process.returncode = resources, os.waitstatus_to_exitcode(status)
          break
        if stop_when is not None and not stopping and stop_when():
          process.send_signal(signal.SIGTERM)
          stopping = True
        if time.monotonic() - started > timeout_s:
          process.kill()
          raise TimeoutError(f'{command[:3]} ran over {timeout_s}s')
        time.sleep(0.2)
    finally:
      finished.set()
      sampler.join()
    wall = time.monotonic() - started
    machine_after = _machine_busy_ticks()
    out.seek(0)
    cpu_s = max(usage.ru_utime + usage.ru_stime, sum(cpu_s_by_pid.values()))
    return {'wall_s': wall, 'cpu_s': cpu_s, 'peak_rss_mb': peak[0] / 1024,
            'services_peak_rss_mb': services_peak[0] / 1024,
            'watched_cpu_s': {name: _cpu_s_or_zero(pid) - watched_before[name] for name, pid in watched.items()},
            'machine_busy_cores': _busy_cores(machine_before, machine_after),
            'stdout': out.read().decode(errors='replace'), 'returncode': process.returncode}


def _last_json(stdout: str) -> dict:
  for line in reversed(stdout.strip().splitlines()):
    if line.startswith('{'):
      return json.loads(line)
  raise ValueError(f'no JSON result in: {stdout[-500:]}')


def build_go_seed() -> Path:
  go = shutil.which('go') or next((p for p in ('/usr/local/go/bin/go', '/usr/lib/go/bin/go') if os.access(p, os.X_OK)),
                                  None)
  if go is None:
    raise RuntimeError('the Go toolchain (go) is needed to build bench/go_seed; install it or put it on PATH')
  binary = REPO_ROOT / '.local' / 'bench' / 'go_seed'
  binary.parent.mkdir(parents=True, exist_ok=True)
  subprocess.run([go, 'build', '-o', str(binary), '.'], cwd=REPO_ROOT / 'bench' / 'go_seed', check=True)
  return binary


FLINK_JAVA_SOURCES = REPO_ROOT / 'bench' / 'flink_java'
FLINK_JAVA_JAR = REPO_ROOT / '.local' / 'bench' / 'flink_java' / 'site-stats-flink-java.jar'


def build_flink_java() -> Path:
  """The Java Flink job's jar, built by Maven (bench/flink_java/pom.xml) when it is missing or older than its
  sources."""
  sources = [FLINK_JAVA_SOURCES / 'pom.xml', *(p for p in (FLINK_JAVA_SOURCES / 'src' / 'main').rglob('*')
                                               if p.is_file())]
  if FLINK_JAVA_JAR.exists() and FLINK_JAVA_JAR.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
    return FLINK_JAVA_JAR
  mvn = shutil.which('mvn')
  if mvn is None:
    raise RuntimeError('Maven (mvn) is needed to build bench/flink_java; install it or put it on PATH')
  print('building bench/flink_java with Maven ...', flush=True)
  subprocess.run([mvn, '-q', '--batch-mode', '-f', str(FLINK_JAVA_SOURCES / 'pom.xml'), 'package'], check=True)
  return FLINK_JAVA_JAR


def run_benchmark(args) -> List[dict]:
  from beam_pipeline.tools import produce
  from beam_pipeline.io.cassandra import schema
  from beam_pipeline.io.cassandra.connection import CassandraConnection
  from beam_pipeline.io.kafka.admin import delete_topics, ensure_topics
  from beam_pipeline.testing.counters import expected_counters, read_counters

  if 'flink_java' in args.only:
    build_flink_java()  # before the topic is produced: a missing Maven fails the run now, not near its end
  stamp = datetime.datetime.now(datetime.timezone.utc).strftime('%Y%m%dT%H%M%SZ')
  topic = f'bench-{stamp}'
  results_dir = Path(args.results_dir)
  results_dir.mkdir(parents=True, exist_ok=True)
  log_path = results_dir / f'{stamp}.log'
  ensure_topics(args.bootstrap_servers, [topic, f'{topic}-dlq'], args.partitions)
  print(f'producing {args.messages} messages over {args.keys} keys ({args.bad_ratio:.1%} invalid) to {topic}')
  expected = produce.produce(args.bootstrap_servers, topic,
                             produce.generate(args.messages, args.keys, args.bad_ratio, seed=args.seed))
  want = expected_counters(expected)
  cluster = CassandraConnection(('127.0.0.1',), args.cassandra_port).cluster()
  session = cluster.connect()
  python = sys.executable
  common = ['--bootstrap_servers', args.bootstrap_servers, '--topic', topic]
  workers = ['--direct_num_workers', str(args.workers)]
  if args.workers != 1:
    workers += ['--direct_running_mode', 'multi_processing']
  rows = []
  try:
    for round_number, name in ((r, n) for r in range(1, args.rounds + 1) for n in args.only):
      # Each round its own keyspace and consumer group: a group that had read the topic would read nothing.
      keyspace = f'bench_{name}_{stamp.lower()}'[:46] + f'_{round_number}'
      schema.create_schema(session, keyspace)
      cassandra = ['--keyspace', keyspace, '--cassandra_port', str(args.cassandra_port)]
      stop_when, services = None, ()
      if name == 'raw_kafka_python':
        command = [python, '-m', 'bench.baselines', 'raw', *common]
      elif name == 'raw_confluent_kafka':
        command = [python, '-m', 'bench.baselines', 'raw_confluent', *common]
      elif name == 'naive_python':
        command = [python, '-m', 'bench.baselines', 'naive', *common, *cassandra]
      elif name == 'go_seed':
        command = [str(build_go_seed()), '--brokers', args.bootstrap_servers, '--topic', topic,
                   '--keyspace', keyspace, '--cassandra_port', str(args.cassandra_port), '--group', keyspace]
      elif name == 'pipeline_direct':
        command = [python, '-m', 'bench.baselines', 'pipeline', *common, *cassandra, *workers]
      elif name == 'pipeline_direct_at_least_once':  # what the offset ledger costs: pipeline_direct without it
        command = [python, '-m', 'bench.baselines', 'pipeline', *common, *cassandra, *workers,
                   '--counting', 'at_least_once']
      elif name == 'pipeline_direct_librdkafka':
        command = [python, '-m', 'bench.baselines', 'pipeline', *common, *cassandra, *workers,
                   '--kafka_client', 'confluent']
      elif name in ('pipeline_streaming', 'pipeline_streaming_2_copies'):
        group = f'bench-{name}-{stamp}-{round_number}'
        command = [python, '-m', 'beam_pipeline', *common, *cassandra, *workers, '--consumer_group', group]
        if name == 'pipeline_streaming_2_copies':
          command[1:3] = ['-m', 'bench.baselines', 'copies', '--copies', '2']
        stop_when = GroupDrain(args.bootstrap_servers, topic, group, copies=2 if name.endswith('_2_copies') else 1)
      elif name.startswith('pipeline_flink'):
        contender = 'streaming' if '_streaming' in name else 'pipeline'
        without_ledger = ['--counting', 'at_least_once'] if name.endswith('_at_least_once') else []
        command, services = _flink_contender(
            name, [python, '-m', 'bench.baselines', contender, *common, *cassandra,
                   '--job_name', f'{name}-{stamp}-{round_number}', *without_ledger],
            args.workers)
      elif name == 'flink_java':
        command, services = _flink_java_contender(
            [python, '-m', 'bench.baselines', 'flink_java', *common, *cassandra,
             '--job_name', f'{name}-{stamp}-{round_number}'], args.workers)
      else:
        raise ValueError(f'unknown contender {name!r}; choose from {", ".join(CONTENDERS)}')
      if name.startswith('pipeline'):
        command += shlex.split(args.job_args)
      quiet_wait_s = wait_until_quiet()
      print(f'running {name} ...', flush=True)
      figures = measure(command, log_path, stop_when, services=services, watched=local_service_pids())
      if stop_when is not None:
        stop_when.close()
      if stop_when is None and figures['returncode'] != 0:
        raise RuntimeError(f'{name} failed (exit {figures["returncode"]}); see {log_path}')
      reported = _last_json(figures['stdout']) if stop_when is None else {}
      counted = read_counters(session, keyspace) if not name.startswith('raw_') else None
      rows.append({
          'name': name,
          'round': round_number,
          'messages': reported.get('messages', expected.messages),
          'msgs_per_s': round(expected.messages / figures['wall_s'], 1),
          'elapsed_s': round(figures['wall_s'], 2),
          'cpu_s': round(figures['cpu_s'], 2),
          'peak_rss_mb': round(figures['peak_rss_mb'], 1),
          'cassandra_writes': reported.get('cassandra_writes'),
          'cassandra_requests': reported.get('cassandra_requests', reported.get('cassandra_writes')),
          'exact': None if counted is None else counted == want,
          'workers': args.workers if name.startswith('pipeline') or name == 'flink_java' else 1,
          'quiet_wait_s': quiet_wait_s,
          # Where the machine's cores went meanwhile: the services share them with the contender.
          'machine_busy_cores': round(figures['machine_busy_cores'], 2),
          **{f'{name}_cpu_s': round(cpu_s, 2) for name, cpu_s in figures['watched_cpu_s'].items()},
      })
      if isinstance(stop_when, GroupDrain):
        rows[-1].update(stop_when.drain_phase(expected.messages))
      if name.startswith('pipeline'):
        rows[-1]['ledger_ranges_per_partition'] = _ledger_ranges_per_partition(session, keyspace)
      if services:
        rows[-1]['flink_jvm_peak_rss_mb'] = round(figures['services_peak_rss_mb'], 1)
      if name.startswith('pipeline_flink_cluster') or name == 'flink_java':
        rows[-1].update(_cluster_read_phase(f'{name}-{stamp}-{round_number}', reported.get('caught_up_ms'),
                                            expected.messages))
      session.execute(f'DROP KEYSPACE IF EXISTS {keyspace}')
  finally:
    cluster.shutdown()
    delete_topics(args.bootstrap_servers, [topic, f'{topic}-dlq'])
  report = {'when': stamp, 'messages': args.messages, 'keys': args.keys, 'bad_ratio': args.bad_ratio,
            'job_args': args.job_args,
            'partitions': args.partitions, 'pipeline_workers': args.workers, 'machine': _machine(), 'rows': rows}
  (results_dir / f'{stamp}.json').write_text(json.dumps(rows, indent=2) + '\n')
  (results_dir / f'{stamp}-run.json').write_text(json.dumps(report, indent=2) + '\n')
  _plot(rows, results_dir / f'{stamp}.png', args)
  print(_table(rows))
  print(f'results: {results_dir / (stamp + ".json")}, chart: {results_dir / (stamp + ".png")}')
  return rows


def _flink_contender(name: str, job: List[str], parallelism: int):
  """The job's command on embedded Flink or on the local session cluster, and the pids of the Flink JVMs it uses."""
  from beam_pipeline.devservices.flink import FlinkSessionCluster
  from beam_pipeline.runners.flink.job_server import FlinkJobServer
  options = ['--runner', 'FlinkRunner', '--parallelism', str(parallelism)]
  if name == 'pipeline_flink':
    server = FlinkJobServer(REPO_ROOT)
    server.ensure_running()  # started before the clock runs, as a user's long-lived job server would be
    return [*job, *options], (server.process.pid(),)
  cluster = FlinkSessionCluster(REPO_ROOT)
  if not cluster.all_ready():
    raise RuntimeError('pipeline_flink_cluster needs the Flink session cluster: ./run_local.sh flink-up')
  jvms = (cluster.job_server, cluster.job_manager, *cluster.task_managers, cluster.worker_pool)
  return ([*job, *options, '--flink_master', cluster.master], tuple(s.process.pid() for s in jvms))


def _flink_java_contender(job: List[str], parallelism: int):
  """The Java job's command (its jar built by run_benchmark before the topic was produced) and the pids of the
  cluster's JobManager and TaskManagers, the only Flink JVMs it uses."""
  from beam_pipeline.devservices.flink import FlinkSessionCluster
  jar = FLINK_JAVA_JAR
  cluster = FlinkSessionCluster(REPO_ROOT)
  if not cluster.all_ready():
    raise RuntimeError('flink_java needs the Flink session cluster: ./run_local.sh flink-up')
  jvms = (cluster.job_manager, *cluster.task_managers)
  return ([*job, '--jar', str(jar), '--flink_master', cluster.master, '--parallelism', str(parallelism)],
          tuple(s.process.pid() for s in jvms))


class GroupDrain:
  """Tells a streaming contender to stop once its consumer group has committed every partition's end, and notes
  when the group first settled (Stable, with every copy a member): the drain's own rate leaves out the copies' start
  and the group's first assignment. That assignment waits group.initial.rebalance.delay.ms (3 s by default), and
  again for each copy that joins within the wait, so copies started together wait twice as long as one."""

  def __init__(self, bootstrap_servers: str, topic: str, group: str, copies: int):
    from kafka.admin import KafkaAdminClient
    from beam_pipeline.testing.topics import TopicOffsets
    self._offsets = TopicOffsets(bootstrap_servers, topic, group)
    self._admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    self._group, self._copies = group, copies
    self._settled_at = self._drained_at = None
    self._busy_ticks = []  # the machine's, when the group settled and when it had committed everything

  def __call__(self) -> bool:
    if self._settled_at is None:
      group = self._admin.describe_consumer_groups([self._group])[0]
      if group.state == 'Stable' and len(group.members) == self._copies:
        self._settled_at = time.monotonic()
        self._busy_ticks.append(_machine_busy_ticks())
      return False
    if self._offsets.all_committed():
      self._drained_at = time.monotonic()
      self._busy_ticks.append(_machine_busy_ticks())
      return True
    return False

  def drain_phase(self, messages: int) -> dict:
    """The seconds from the group settling to the last commit, the rate over them, and the cores the whole
    machine kept busy meanwhile."""
    read_s = self._drained_at - self._settled_at
    return {'read_s': round(read_s, 2), 'read_msgs_per_s': round(messages / read_s, 1),
            'read_busy_cores': round(_busy_cores(*self._busy_ticks), 2)}

  def close(self) -> None:
    self._offsets.close()
    self._admin.close()


def _cluster_read_phase(job_name: str, caught_up_ms: Optional[int], messages: int) -> dict:
  """How long the session cluster's job spent reading (from the start of its reading vertex to its end, or for a
  streaming job to when the group had committed everything), and so its rate without the fixed costs before it:
  submission, deployment, the Python workers' start, the planning stage. The reading vertex is the one that
  writes the counters: the pipeline fuses its read with CassandraCounterWrite, and flink_java chains its source,
  validation and write, named the same, into one vertex."""
  from beam_pipeline.devservices.flink import FlinkSessionCluster
  from beam_pipeline.runners.flink.rest import rest_get
  rest = FlinkSessionCluster(REPO_ROOT).master
  job = next(j for j in rest_get(rest, '/jobs/overview')['jobs'] if j['name'] == job_name)
  reader = next(v for v in rest_get(rest, f'/jobs/{job["jid"]}')['vertices'] if 'CassandraCounterWrite' in v['name'])
  end_ms = caught_up_ms or reader['end-time']
  read_s = (end_ms - reader['start-time']) / 1000
  return {'read_s': round(read_s, 2), 'read_msgs_per_s': round(messages / read_s, 1)}


def _ledger_ranges_per_partition(session, keyspace: str) -> Optional[int]:
  """The most offset ranges (counted and uncertain) one partition's ledger row holds after the run; None without
  the ledger (--counting at_least_once). Adjacent ranges merge, so a run that read each partition in order has 1."""
  from beam_pipeline.io.cassandra.offset_ledger import LEDGER_TABLE
  rows = list(session.execute(f'SELECT counted, uncertain FROM {keyspace}.{LEDGER_TABLE}'))
  return max((len(row.counted or ()) + len(row.uncertain or ()) for row in rows), default=None)


def _machine() -> str:
  cpu = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name')), '?')
  memory_gb = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
  return f'{os.cpu_count()} cores ({cpu}), {memory_gb:.0f} GiB'


def _table(rows: List[dict]) -> str:
  names = [r['name'] if r.get('round', 1) == 1 else f'{r["name"]} #{r["round"]}' for r in rows]
  width = max(map(len, names), default=4)
  lines = [f'{"name":<{width}} {"msgs/s":>10} {"cpu s":>8} {"kafka s":>8} {"cass. s":>8} {"busy cores":>10} '
           f'{"peak MB":>8} {"writes":>9} {"requests":>9} {"exact":>6} {"reading msgs/s":>15} {"ledger ranges":>14}']
  for name, r in zip(names, rows):
    services = ''.join(f'{"-" if r.get(f"{service}_cpu_s") is None else format(r[f"{service}_cpu_s"], ".1f"):>9}'
                       for service in ('kafka', 'cassandra'))
    lines.append(f'{name:<{width}} {r["msgs_per_s"]:>10,.0f} {r["cpu_s"]:>8.1f}{services} '
                 f'{r.get("machine_busy_cores", "-"):>10} {r["peak_rss_mb"]:>8.0f} '
                 f'{"-" if r["cassandra_writes"] is None else r["cassandra_writes"]:>9} '
                 f'{"-" if r["cassandra_requests"] is None else r["cassandra_requests"]:>9} '
                 f'{"-" if r["exact"] is None else ("yes" if r["exact"] else "NO"):>6} '
                 f'{r["read_msgs_per_s"] if "read_msgs_per_s" in r else "-":>15} '
                 f'{"-" if r.get("ledger_ranges_per_partition") is None else r["ledger_ranges_per_partition"]:>14}')
  return '\n'.join(lines + _relative_to_flink_java(rows, names, width) + _copies_against_one(rows))


def _copies_against_one(rows: List[dict]) -> List[str]:
  """Two copies' rate as a multiple of one copy's in the same round: end to end, and over the drain alone."""
  one = {r['round']: r for r in rows if r['name'] == 'pipeline_streaming'}
  lines = [f'  round {two["round"]}: {two["msgs_per_s"] / one[two["round"]]["msgs_per_s"]:.2f}x end to end, '
           f'{two["read_msgs_per_s"] / one[two["round"]]["read_msgs_per_s"]:.2f}x draining (the machine '
           f'{one[two["round"]]["read_busy_cores"]:.2f} -> {two["read_busy_cores"]:.2f} cores busy)'
           for two in rows if two['name'] == 'pipeline_streaming_2_copies' and two['round'] in one]
  if not lines:
    return []
  return ['', 'two copies as a multiple of one copy (msgs/s; reading msgs/s from the group settling):', *lines]


def _relative_to_flink_java(rows: List[dict], names: List[str], width: int) -> List[str]:
  """Each pipeline row's msgs/s (and reading msgs/s, for the cluster runs) as a multiple of flink_java's in the
  same round; nothing when flink_java did not run."""
  peers = {r.get('round', 1): r for r in rows if r['name'] == 'flink_java'}
  if not peers:
    return []
  lines = ['', 'as a multiple of flink_java in the same round (msgs/s; reading msgs/s on the cluster):']
  for name, r in zip(names, rows):
    peer = peers.get(r.get('round', 1))
    if peer is None or not r['name'].startswith('pipeline'):
      continue
    line = f'  {name:<{width}} {r["msgs_per_s"] / peer["msgs_per_s"]:>6.2f}x'
    if 'read_msgs_per_s' in r and 'read_msgs_per_s' in peer:
      line += f'   reading {r["read_msgs_per_s"] / peer["read_msgs_per_s"]:.2f}x'
    lines.append(line)
  return lines


def _plot(rows: List[dict], path: Path, args) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  figure, axis = plt.subplots(figsize=(9, 4.5))
  names = [r['name'] for r in rows]
  bars = axis.bar(names, [r['msgs_per_s'] for r in rows],
                  color=['#4c72b0' if r['name'].startswith('pipeline') else '#999999' for r in rows])
  for bar, row in zip(bars, rows):
    axis.annotate(f'{row["msgs_per_s"]:,.0f}', (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                  ha='center', va='bottom', fontsize=9)
  axis.set_ylabel('messages per second')
  axis.set_title(f'{args.messages:,} messages, {args.keys:,} keys, {args.bad_ratio:.0%} invalid; {_machine()}',
                 fontsize=9)
  plt.setp(axis.get_xticklabels(), rotation=15)
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  plt.close(figure)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog='./bench/run.sh', description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--messages', type=int, default=1000000)
  parser.add_argument('--keys', type=int, default=10000)
  parser.add_argument('--bad_ratio', type=float, default=0.01)
  parser.add_argument('--partitions', type=int, default=4)
  parser.add_argument('--seed', type=int, default=7)
  parser.add_argument('--workers', type=int, default=os.cpu_count(),
                      help='SDK worker processes of the pipeline runs (default: one per core)')
  parser.add_argument('--only', type=lambda s: s.split(','), default=CONTENDERS,
                      help=f'comma-separated subset of {",".join(CONTENDERS)}')
  parser.add_argument('--rounds', type=int, default=1, help='run the contenders in turn this many times')
  parser.add_argument('--job_args', default='',
                      help='more options for the job in every pipeline contender, as one string, e.g. '
                           '"--statements_per_batch 1"')
  parser.add_argument('--results_dir', default=str(REPO_ROOT / 'bench' / 'results'))
  parser.add_argument('--bootstrap_servers', default=f'127.0.0.1:{os.environ.get("KAFKA_PORT", "9092")}')
  parser.add_argument('--cassandra_port', type=int, default=int(os.environ.get('CASSANDRA_PORT', '9042')))
  args = parser.parse_args(argv)
  unknown = set(args.only) - set(CONTENDERS)
  if (unknown or len(set(args.only)) < len(args.only) or args.messages < 1 or args.keys < 1 or args.workers < 1
      or args.rounds < 1):
    parser.error(f'--only takes each of {",".join(CONTENDERS)} once (--rounds repeats them); --messages, --keys, '
                 '--workers and --rounds must be positive')
  import logging
  logging.basicConfig(level=logging.WARNING)
  logging.getLogger('kafka').setLevel(logging.ERROR)
  run_benchmark(args)
  return 0


if __name__ == '__main__':
  sys.exit(main())
