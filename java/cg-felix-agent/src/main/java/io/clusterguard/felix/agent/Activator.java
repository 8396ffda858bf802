package io.clusterguard.felix.agent;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.osgi.framework.BundleActivator;
import org.osgi.framework.BundleContext;

/**
 * clusterguard's management interface of one Felix framework: JSON over HTTP on the node's
 * address, for the node agent only (a per-node secret the agent writes, sent as a bearer token).
 *
 * <p>Why a bundle of our own rather than what Felix ships: the Web Console runs install, update,
 * refresh and start in a background thread (an HTTP 200 does not mean done) and has a default
 * login and no CSRF protection; Gogo's remote shell has no authentication at all; JMX needs
 * Jolokia or a Java client. Here each operation is synchronous: the answer comes when the bundle
 * is updated, its wiring closure refreshed, it is started and its DS components have settled, and
 * it says what the framework reports, so the agent verifies facts rather than polling.
 *
 * <p>Framework properties: {@code cg.management.host}, {@code cg.management.port},
 * {@code cg.management.secretFile}.
 */
public final class Activator implements BundleActivator {
  private HttpServer server;
  private ExecutorService executor;

  @Override
  public void start(BundleContext context) throws Exception {
    String host = required(context, "cg.management.host");
    int port = Integer.parseInt(required(context, "cg.management.port"));
    byte[] secret =
        Files.readString(Path.of(required(context, "cg.management.secretFile")))
            .trim()
            .getBytes(StandardCharsets.UTF_8);
    if (secret.length < 16) throw new IllegalStateException("the management secret is too short");
    Operations ops = new Operations(context);
    server = HttpServer.create(new InetSocketAddress(host, port), 16);
    // Two threads: a listing answers while an update runs; updates take the operations' lock.
    executor = Executors.newFixedThreadPool(2);
    server.setExecutor(executor);
    server.createContext(
        "/",
        exchange -> {
          try {
            handle(exchange, ops, secret);
          } catch (RuntimeException | IOException e) {
            respond(exchange, 500, Map.of("error", String.valueOf(e)));
          } finally {
            exchange.close();
          }
        });
    server.start();
    System.out.println("clusterguard management listening on " + host + ":" + port);
  }

  @Override
  public void stop(BundleContext context) {
    if (server != null) server.stop(0);
    if (executor != null) executor.shutdownNow();
  }

  private static String required(BundleContext context, String key) {
    String value = context.getProperty(key);
    if (value == null || value.isBlank()) {
      throw new IllegalStateException("framework property " + key + " is not set");
    }
    return value;
  }

  private static void handle(HttpExchange exchange, Operations ops, byte[] secret)
      throws IOException {
    String auth = exchange.getRequestHeaders().getFirst("Authorization");
    byte[] given =
        auth != null && auth.startsWith("Bearer ")
            ? auth.substring(7).trim().getBytes(StandardCharsets.UTF_8)
            : new byte[0];
    if (!MessageDigest.isEqual(given, secret)) {
      respond(exchange, 401, Map.of("error", "send the node's management secret as a bearer token"));
      return;
    }
    String method = exchange.getRequestMethod();
    String path = exchange.getRequestURI().getPath();
    Map<String, String> q = query(exchange.getRequestURI().getRawQuery());
    long timeoutMs = Long.parseLong(q.getOrDefault("timeoutMs", "20000"));
    try {
      if (method.equals("GET") && path.equals("/v1/bundles")) {
        respond(exchange, 200, ops.list());
      } else if (method.equals("POST") && path.equals("/v1/install")) {
        String file = q.get("file");
        if (file == null) throw new IllegalArgumentException("name the staged jar: ?file=<path>");
        respond(exchange, 200, ops.install(Path.of(file), timeoutMs));
      } else if (method.equals("POST") && path.equals("/v1/uninstall")) {
        String name = q.get("symbolicName");
        if (name == null) throw new IllegalArgumentException("name the bundle: ?symbolicName=");
        respond(exchange, 200, ops.uninstall(name, timeoutMs));
      } else {
        respond(exchange, 404, Map.of("error", "no such operation: " + method + " " + path));
      }
    } catch (IllegalArgumentException e) {
      respond(exchange, 400, Map.of("error", String.valueOf(e.getMessage())));
    } catch (Exception e) {
      Map<String, Object> body = new LinkedHashMap<>();
      body.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
      respond(exchange, 422, body);
    }
  }

  private static Map<String, String> query(String raw) {
    Map<String, String> out = new HashMap<>();
    if (raw == null) return out;
    for (String pair : raw.split("&")) {
      int eq = pair.indexOf('=');
      if (eq <= 0) continue;
      out.put(
          URLDecoder.decode(pair.substring(0, eq), StandardCharsets.UTF_8),
          URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8));
    }
    return out;
  }

  private static void respond(HttpExchange exchange, int status, Object body) throws IOException {
    byte[] bytes = Json.write(body).getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    exchange.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(bytes);
    }
  }
}
