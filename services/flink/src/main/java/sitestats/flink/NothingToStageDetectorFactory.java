package sitestats.flink;

import java.util.Collections;
import java.util.List;
import org.apache.beam.sdk.util.construction.resources.PipelineResourcesDetector;

/**
 * Finds no files for Beam's job server to stage with a job. For a Flink cluster whose JobManager and TaskManagers
 * run from the same jars as the job server (the project's session cluster declares it in its configuration):
 * Beam's default detector hands every job the job server's whole classpath, which Flink then uploads and copies
 * to each TaskManager, once per job. Named by the pipeline option pipelineResourcesDetectorFactoryClass.
 */
public final class NothingToStageDetectorFactory implements PipelineResourcesDetector.Factory {

  public static NothingToStageDetectorFactory create() {
    return new NothingToStageDetectorFactory();
  }

  @Override
  public PipelineResourcesDetector getPipelineResourcesDetector() {
    return new NothingToStage();
  }

  private static final class NothingToStage implements PipelineResourcesDetector {
    private static final long serialVersionUID = 1L;

    @Override
    public List<String> detect(ClassLoader classLoader) {
      return Collections.emptyList();
    }
  }
}
