package io.clusterguard.example;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.common.converter.CodecDataConverter;
import io.temporal.common.converter.DataConverter;
import io.temporal.common.converter.DefaultDataConverter;
import io.temporal.failure.ApplicationFailure;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Java service steering a runbook (docs/api.md): starts joinNode as cg/<cluster>/membership,
 * pauses it (signal), reads its progress (query), aborts it (update) and reads the failure.
 * Prints one JSON object per line. Arguments: address namespace taskQueue clusterId node master.
 * With CG_CODEC__KEYS and CG_CODEC__CURRENT set, payloads are encrypted as the orchestrator's.
 */
public final class RunbookClient {
  private static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] args) throws Exception {
    String address = args[0], namespace = args[1], taskQueue = args[2];
    String clusterId = args[3], node = args[4], master = args[5];

    DataConverter converter = DefaultDataConverter.newDefaultInstance();
    String keys = System.getenv("CG_CODEC__KEYS");
    if (keys != null && !keys.isBlank()) {
      EncryptionCodec codec = EncryptionCodec.fromEnvironment(keys, System.getenv("CG_CODEC__CURRENT"));
      converter = new CodecDataConverter(converter, List.of(codec));
    }
    WorkflowServiceStubs service =
        WorkflowServiceStubs.newServiceStubs(
            WorkflowServiceStubsOptions.newBuilder().setTarget(address).build());
    WorkflowClient client =
        WorkflowClient.newInstance(
            service,
            WorkflowClientOptions.newBuilder()
                .setNamespace(namespace)
                .setDataConverter(converter)
                .build());

    // Membership runbooks run as cg/<cluster>/membership; the runbook tags itself for search.
    WorkflowStub runbook =
        client.newUntypedWorkflowStub(
            "joinNode",
            WorkflowOptions.newBuilder()
                .setWorkflowId("cg/" + clusterId + "/membership")
                .setTaskQueue(taskQueue)
                .setStaticSummary("joinNode of cluster " + clusterId + " (from Java)")
                .build());
    Map<String, Object> input = new LinkedHashMap<>();
    input.put("clusterId", clusterId);
    input.put("node", node);
    input.put("master", master);
    input.put("agentTimeoutSeconds", 1);
    String runId = runbook.start(input).getRunId();
    print("started", runId);

    runbook.signal("pause", "paused from Java");
    // The runbook lists its steps once the cluster's admission granted it (docs/design.md
    // "Admission"); the pause is recorded from the start.
    JsonNode progress = runbook.query("progress", JsonNode.class);
    for (int i = 0; i < 300 && !(progress.has("paused") && progress.path("steps").size() > 0); i++) {
      Thread.sleep(100);
      progress = runbook.query("progress", JsonNode.class);
    }
    print("progress", progress);

    String answer = runbook.update("abort", String.class, Map.of("reason", "aborted from Java"));
    print("update", answer);

    try {
      runbook.getResult(JsonNode.class);
      print("result", "completed");
    } catch (WorkflowFailedException e) {
      Throwable cause = e.getCause();
      if (cause instanceof ApplicationFailure) {
        ApplicationFailure failure = (ApplicationFailure) cause;
        print("failure", Map.of("type", failure.getType(), "message", failure.getOriginalMessage()));
      } else {
        print("failure", Map.of("type", String.valueOf(cause), "message", e.getMessage()));
      }
    }
    service.shutdown();
    System.exit(0);
  }

  private static void print(String key, Object value) throws Exception {
    System.out.println(JSON.writeValueAsString(Map.of(key, value)));
    System.out.flush();
  }
}
