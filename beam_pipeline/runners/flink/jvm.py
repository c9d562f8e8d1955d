"""A JVM on the Flink classpath (``.local/jars/flink``, resolved from ``services/flink/pom.xml``): the job server
and the session cluster's JobManager and TaskManager all start this way, each with Flink's Prometheus reporter."""

from typing import List, Tuple

from beam_pipeline.processes import jvm
from beam_pipeline.processes.ports import port_from_environment

SUPPORTED_JAVA = (17, 11)

# What Flink's own start scripts pass to a JVM of Java 11+ (Flink 1.19, env.java.opts.all): its serializers
# and network stack reach into these JDK packages.
_JAVA_MODULE_FLAGS = [
    '-XX:+IgnoreUnrecognizedVMOptions',
    *(f'--add-exports=java.base/{package}=ALL-UNNAMED' for package in ('sun.net.util',)),
    '--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED',
    '--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED',
    *(f'--add-opens=java.base/{package}=ALL-UNNAMED' for package in (
        'java.lang', 'java.net', 'java.io', 'java.nio', 'sun.nio.ch', 'java.lang.reflect', 'java.text',
        'java.time', 'java.util', 'java.util.concurrent', 'java.util.concurrent.atomic',
        'java.util.concurrent.locks')),
]

LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{HH:mm:ss,SSS} %-5p %c{1} - %m%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
# Per-checkpoint and per-bundle chatter would drown the lines that explain a failure.
logger.checkpoint.name = org.apache.flink.runtime.checkpoint
logger.checkpoint.level = WARN
logger.sdkharness.name = org.apache.beam.runners.fnexecution
logger.sdkharness.level = WARN
"""


# How many embedded jobs (mini clusters) at once get a reporter port: as many as get a REST port.
_EMBEDDED_REPORTERS = 20


def prometheus_port() -> int:
  """The first port of Flink's Prometheus reporters (``FLINK_PROMETHEUS_PORT``, 9249): the session cluster's
  JobManager serves on it, its TaskManager on the next, embedded mini clusters on the ones after."""
  return port_from_environment('FLINK_PROMETHEUS_PORT', 9249)


def embedded_prometheus_ports() -> range:
  first = prometheus_port() + 2
  return range(first, first + _EMBEDDED_REPORTERS)


def prometheus_reporter_settings(port: str) -> dict:
  """flink-conf.yaml settings of Flink's Prometheus reporter, on ``port`` or on the first free port of a range
  (``9251-9270``). Flink serves it on every interface; it has no setting for the address."""
  return {'metrics.reporter.prom.factory.class': 'org.apache.flink.metrics.prometheus.PrometheusReporterFactory',
          'metrics.reporter.prom.port': port}


class FlinkJvm(jvm.JvmService):
  """A JVM on the Flink classpath (.local/jars/flink)."""

  name = 'flink'
  heap = '512m'

  def _java_command(self, main_class: str, *args: str, jvm_flags: Tuple[str, ...] = ()) -> List[str]:
    java = jvm.find_java(SUPPORTED_JAVA, 'Flink 1.19')
    self.base.mkdir(parents=True, exist_ok=True)
    (self.base / 'log4j2.properties').write_text(LOG4J2)
    return [java, f'-Xmx{self.heap}', *jvm_flags, *_JAVA_MODULE_FLAGS,
            f'-Dlog4j.configurationFile={self.base / "log4j2.properties"}',
            f'-Dlog.file={self.process.log_file}',
            '-cp', jvm.classpath(self.jars_dir), main_class, *args]
