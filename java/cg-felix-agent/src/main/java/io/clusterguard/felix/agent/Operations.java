package io.clusterguard.felix.agent;

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarInputStream;
import java.util.jar.Manifest;
import org.osgi.framework.Bundle;
import org.osgi.framework.BundleContext;
import org.osgi.framework.BundleException;
import org.osgi.framework.Constants;
import org.osgi.framework.FrameworkEvent;
import org.osgi.framework.ServiceReference;
import org.osgi.framework.startlevel.BundleStartLevel;
import org.osgi.framework.wiring.BundleRevision;
import org.osgi.framework.wiring.FrameworkWiring;
import org.osgi.service.component.runtime.ServiceComponentRuntime;
import org.osgi.service.component.runtime.dto.ComponentConfigurationDTO;
import org.osgi.service.component.runtime.dto.ComponentDescriptionDTO;
import org.osgi.service.component.runtime.dto.UnsatisfiedReferenceDTO;

/**
 * The operations, each synchronous and one at a time. They report what the framework says; the
 * agent decides what counts as success (docs/bundles.md, "Verification").
 */
final class Operations {
  /** Bundles installed through this interface get this location prefix plus the symbolic name. */
  static final String locationPrefix = "clusterguard:";

  private final BundleContext context;
  private final Object lock = new Object();

  Operations(BundleContext context) {
    this.context = context;
  }

  Map<String, Object> list() {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("pid", ProcessHandle.current().pid());
    List<Object> bundles = new ArrayList<>();
    for (Bundle b : context.getBundles()) bundles.add(describe(b));
    out.put("bundles", bundles);
    return out;
  }

  /**
   * Installs the staged jar, or updates the bundle of the same symbolic name in place (its id is
   * kept), refreshes only the bundles wired to the old revision, starts it and waits until its
   * components have settled.
   */
  Map<String, Object> install(Path file, long timeoutMs) throws Exception {
    if (!Files.isRegularFile(file)) throw new IllegalArgumentException("no file " + file);
    String name;
    try (JarInputStream jar = new JarInputStream(Files.newInputStream(file))) {
      Manifest mf = jar.getManifest();
      String bsn = mf == null ? null : mf.getMainAttributes().getValue(Constants.BUNDLE_SYMBOLICNAME);
      if (bsn == null) throw new IllegalArgumentException(file + " has no Bundle-SymbolicName");
      name = bsn.split(";")[0].trim();
    }
    synchronized (lock) {
      Set<Long> activeBefore = activeIds();
      Bundle target = find(name);
      Map<String, Object> out = new LinkedHashMap<>();
      List<Long> refreshed = new ArrayList<>();
      try (InputStream in = Files.newInputStream(file)) {
        if (target == null) {
          target = context.installBundle(locationPrefix + name, in);
          out.put("action", "installed");
        } else {
          // What uses the old revision now; refreshBundles computes the same closure itself.
          for (Bundle b : wiring().getDependencyClosure(List.of(target))) refreshed.add(b.getBundleId());
          target.update(in);
          refresh(List.of(target), timeoutMs);
          out.put("action", "updated");
        }
      }
      out.put("refreshed", refreshed);
      finish(target, out, activeBefore, timeoutMs);
      return out;
    }
  }

  Map<String, Object> uninstall(String name, long timeoutMs) throws Exception {
    synchronized (lock) {
      Set<Long> activeBefore = activeIds();
      Bundle target = find(name);
      Map<String, Object> out = new LinkedHashMap<>();
      out.put("action", target == null ? "absent" : "uninstalled");
      if (target != null) {
        activeBefore.remove(target.getBundleId());
        target.uninstall();
        refresh(List.of(target), timeoutMs);
      }
      startStranded();
      out.put("lostActive", lost(activeBefore));
      return out;
    }
  }

  private void finish(Bundle target, Map<String, Object> out, Set<Long> activeBefore, long timeoutMs)
      throws InterruptedException {
    try {
      target.start();
    } catch (BundleException e) {
      // Unresolved requirements: Felix names the missing package in the message.
      out.put("error", e.getMessage());
    }
    startStranded();
    settle(target, timeoutMs);
    out.put("bundle", describe(target));
    out.put("lostActive", lost(activeBefore));
  }

  /**
   * Bundles meant to run (persistently started) that a refresh left resolved or installed, e.g.
   * an importer of a package that a failed revision did not export: started again when they can.
   */
  private void startStranded() {
    for (Bundle b : context.getBundles()) {
      if ((b.getState() & (Bundle.INSTALLED | Bundle.RESOLVED)) == 0) continue;
      BundleRevision rev = b.adapt(BundleRevision.class);
      if (rev != null && (rev.getTypes() & BundleRevision.TYPE_FRAGMENT) != 0) continue;
      BundleStartLevel level = b.adapt(BundleStartLevel.class);
      if (level == null || !level.isPersistentlyStarted()) continue;
      try {
        b.start();
      } catch (BundleException | IllegalStateException e) {
        // still unresolvable: reported by the listing
      }
    }
  }

  private void refresh(Collection<Bundle> bundles, long timeoutMs) throws Exception {
    CountDownLatch done = new CountDownLatch(1);
    wiring()
        .refreshBundles(
            bundles,
            event -> {
              if (event.getType() == FrameworkEvent.PACKAGES_REFRESHED) done.countDown();
            });
    if (!done.await(timeoutMs, TimeUnit.MILLISECONDS)) {
      throw new IllegalStateException("the refresh did not finish within " + timeoutMs + " ms");
    }
  }

  /** Waits until the bundle's components have left the transient states (or the time is up). */
  private void settle(Bundle target, long timeoutMs) throws InterruptedException {
    long deadline = System.currentTimeMillis() + Math.min(timeoutMs, 10_000);
    while (target.getState() == Bundle.ACTIVE && System.currentTimeMillis() < deadline) {
      Boolean settled = withScr(scr -> scr == null || settled(scr, target));
      if (settled) return;
      Thread.sleep(50);
    }
  }

  private static boolean settled(ServiceComponentRuntime scr, Bundle target) {
    boolean settled = true;
    for (ComponentDescriptionDTO d : scr.getComponentDescriptionDTOs(target)) {
      if (!scr.isComponentEnabled(d)) continue;
      Collection<ComponentConfigurationDTO> configs = scr.getComponentConfigurationDTOs(d);
      if (configs.isEmpty()) settled = false;
      for (ComponentConfigurationDTO c : configs) {
        boolean done =
            c.state == ComponentConfigurationDTO.ACTIVE
                || c.state == ComponentConfigurationDTO.FAILED_ACTIVATION
                || (c.state == ComponentConfigurationDTO.SATISFIED && !d.immediate);
        if (!done) settled = false;
      }
    }
    return settled;
  }

  private Map<String, Object> describe(Bundle b) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("id", b.getBundleId());
    out.put("symbolicName", b.getSymbolicName());
    out.put("version", b.getVersion().toString());
    out.put("state", stateName(b.getState()));
    out.put("location", b.getLocation());
    out.put("components", components(b));
    return out;
  }

  private List<Object> components(Bundle b) {
    if (b.getState() != Bundle.ACTIVE) return new ArrayList<>();
    return withScr(scr -> scr == null ? new ArrayList<>() : components(scr, b));
  }

  private static List<Object> components(ServiceComponentRuntime scr, Bundle b) {
    List<Object> out = new ArrayList<>();
    for (ComponentDescriptionDTO d : scr.getComponentDescriptionDTOs(b)) {
      Collection<ComponentConfigurationDTO> configs =
          scr.isComponentEnabled(d) ? scr.getComponentConfigurationDTOs(d) : List.of();
      if (configs.isEmpty()) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("name", d.name);
        c.put("state", scr.isComponentEnabled(d) ? "UNSATISFIED_CONFIGURATION" : "DISABLED");
        c.put("immediate", d.immediate);
        out.add(c);
      }
      for (ComponentConfigurationDTO cc : configs) {
        Map<String, Object> c = new LinkedHashMap<>();
        c.put("name", d.name);
        c.put("state", componentState(cc.state));
        c.put("immediate", d.immediate);
        if (cc.failure != null) c.put("failure", cc.failure);
        List<Object> missing = new ArrayList<>();
        if (cc.unsatisfiedReferences != null) {
          for (UnsatisfiedReferenceDTO r : cc.unsatisfiedReferences) missing.add(r.name);
        }
        if (!missing.isEmpty()) c.put("unsatisfiedReferences", missing);
        out.add(c);
      }
    }
    return out;
  }

  /** The SCR service while `use` runs, or null when Declarative Services is not running. */
  private <T> T withScr(java.util.function.Function<ServiceComponentRuntime, T> use) {
    ServiceReference<ServiceComponentRuntime> ref =
        context.getServiceReference(ServiceComponentRuntime.class);
    ServiceComponentRuntime scr = ref == null ? null : context.getService(ref);
    try {
      return use.apply(scr);
    } finally {
      if (scr != null) context.ungetService(ref);
    }
  }

  private Bundle find(String name) {
    for (Bundle b : context.getBundles()) {
      if (b.getBundleId() != 0 && name.equals(b.getSymbolicName())) return b;
    }
    return null;
  }

  private FrameworkWiring wiring() {
    return context.getBundle(Constants.SYSTEM_BUNDLE_LOCATION).adapt(FrameworkWiring.class);
  }

  private Set<Long> activeIds() {
    Set<Long> out = new TreeSet<>();
    for (Bundle b : context.getBundles()) if (b.getState() == Bundle.ACTIVE) out.add(b.getBundleId());
    return out;
  }

  private List<Object> lost(Set<Long> activeBefore) {
    List<Object> out = new ArrayList<>();
    for (long id : activeBefore) {
      Bundle b = context.getBundle(id);
      if (b == null || b.getState() == Bundle.ACTIVE) continue;
      out.add(describe(b));
    }
    return out;
  }

  private static String stateName(int state) {
    return switch (state) {
      case Bundle.UNINSTALLED -> "UNINSTALLED";
      case Bundle.INSTALLED -> "INSTALLED";
      case Bundle.RESOLVED -> "RESOLVED";
      case Bundle.STARTING -> "STARTING";
      case Bundle.STOPPING -> "STOPPING";
      case Bundle.ACTIVE -> "ACTIVE";
      default -> "UNKNOWN";
    };
  }

  private static String componentState(int state) {
    return switch (state) {
      case ComponentConfigurationDTO.UNSATISFIED_CONFIGURATION -> "UNSATISFIED_CONFIGURATION";
      case ComponentConfigurationDTO.UNSATISFIED_REFERENCE -> "UNSATISFIED_REFERENCE";
      case ComponentConfigurationDTO.SATISFIED -> "SATISFIED";
      case ComponentConfigurationDTO.ACTIVE -> "ACTIVE";
      case ComponentConfigurationDTO.FAILED_ACTIVATION -> "FAILED_ACTIVATION";
      default -> "UNKNOWN";
    };
  }
}
