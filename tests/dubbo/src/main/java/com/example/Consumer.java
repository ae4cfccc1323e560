package com.example;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ReferenceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;
import org.apache.dubbo.rpc.RpcContext;

/**
 * Calls com.example.Echo on one address, many times, in one JVM (startup is the slow part):
 * <pre>
 * Consumer --address 127.0.0.1:P [--timeout ms] [--heartbeat ms] [--connections N] [--linger ms]
 *          STEP [--then STEP]...
 * STEP:    [--version 1.0] [--group g] --method echo|fail|attachment|slow|gather [--arg x]
 *          [--count N] [--concurrency C] [--attachment k=v]... [--idle ms] [--await true]
 * </pre>
 * Steps run one after the other on the same connection(s): `--idle` waits that long before
 * the step, `--await` reads a line from stdin first (a test's go-ahead). After each step it
 * prints one JSON line: {"step":..,"ok":..,"errors":..,"mismatches":..,"tags":{tag:count},
 * "error_types":{class:count},"error_messages":[..],"mismatch_examples":[..],"elapsed_ms":..}.
 * Every call carries the attachment "call-index" = its index, and echo's (and gather's)
 * argument is "arg#index": a reply that answers another call (crossed request ids) counts as a
 * mismatch. `gather` calls gather(arg#index, count): the provider holds all `count` at once.
 */
public final class Consumer {
    private static final int MAX_EXAMPLES = 10;

    private final AtomicInteger ok = new AtomicInteger();
    private final AtomicInteger errors = new AtomicInteger();
    private final AtomicInteger mismatches = new AtomicInteger();
    private final Map<String, Integer> tags = new TreeMap<>();
    private final Map<String, Integer> errorTypes = new TreeMap<>();
    private final List<String> errorMessages = new ArrayList<>();
    private final List<String> mismatchExamples = new ArrayList<>();

    public static void main(String[] argv) throws Exception {
        List<Args> steps = new ArrayList<>();
        int from = 0;
        for (int i = 0; i <= argv.length; i++) {
            if (i == argv.length || argv[i].equals("--then")) {
                steps.add(new Args(Arrays.copyOfRange(argv, from, i)));
                from = i + 1;
            }
        }
        Args global = steps.get(0);
        String address = global.required("address");

        ApplicationConfig app = new ApplicationConfig("sluice-echo-consumer");
        app.setQosEnable(false);

        // A direct URL, no registry. hessian2 on purpose: Dubbo 3.2+ would otherwise prefer
        // fastjson2, which Sluice does not read.
        StringBuilder url = new StringBuilder("dubbo://" + dialable(address) + "/" + Echo.class.getName()
                + "?serialization=hessian2&prefer.serialization=hessian2");
        String heartbeat = global.get("heartbeat", null);
        if (heartbeat != null) {
            url.append("&heartbeat=").append(heartbeat);
        }
        String connections = global.get("connections", null);
        if (connections != null) {
            url.append("&connections=").append(connections);
        }
        int timeout = global.getInt("timeout", 3000);

        // One reference per version and group the steps name, all made before the start.
        DubboBootstrap bootstrap = DubboBootstrap.getInstance().application(app);
        Map<String, ReferenceConfig<Echo>> references = new HashMap<>();
        for (Args step : steps) {
            String version = step.get("version", "1.0");
            String group = step.get("group", null);
            references.computeIfAbsent(version + "/" + group, k -> {
                ReferenceConfig<Echo> reference = new ReferenceConfig<>();
                reference.setInterface(Echo.class);
                reference.setUrl(url.toString());
                reference.setVersion(version);
                if (group != null) {
                    reference.setGroup(group);
                }
                reference.setTimeout(timeout);
                // One try per call: a test through the proxy sees exactly what the proxy did.
                reference.setRetries(0);
                reference.setCheck(false);
                bootstrap.reference(reference);
                return reference;
            });
        }
        bootstrap.start();

        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (int s = 0; s < steps.size(); s++) {
            Args step = steps.get(s);
            if (Boolean.parseBoolean(step.get("await", "false"))) {
                stdin.readLine();
            }
            int idle = step.getInt("idle", 0);
            if (idle > 0) {
                Thread.sleep(idle);
            }
            Echo echo = references.get(step.get("version", "1.0") + "/" + step.get("group", null)).get();
            System.out.println(runStep(echo, step).json(s));
            System.out.flush();
        }
        int linger = global.getInt("linger", 0);
        if (linger > 0) {
            Thread.sleep(linger);
        }
        // Dubbo's non-daemon threads would keep the JVM up.
        Runtime.getRuntime().halt(0);
    }

    /** Runs one step's calls and returns what they saw. */
    private static Consumer runStep(Echo echo, Args step) throws InterruptedException {
        String method = step.get("method", "echo");
        String arg = step.get("arg", "x");
        int count = step.getInt("count", 1);
        int concurrency = Math.max(1, step.getInt("concurrency", 1));
        Map<String, String> attachments = new HashMap<>();
        for (String kv : step.all("attachment")) {
            int eq = kv.indexOf('=');
            if (eq < 0) {
                throw new IllegalArgumentException("--attachment wants k=v, got " + kv);
            }
            attachments.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        Consumer c = new Consumer();
        long start = System.nanoTime();
        ExecutorService pool = Executors.newFixedThreadPool(concurrency);
        for (int i = 0; i < count; i++) {
            final int index = i;
            pool.execute(() -> c.call(echo, method, arg, index, count, attachments));
        }
        pool.shutdown();
        pool.awaitTermination(10, TimeUnit.MINUTES);
        c.elapsedMs = (System.nanoTime() - start) / 1_000_000;
        return c;
    }

    private long elapsedMs;

    /**
     * `address` in a form Dubbo dials as given: it swaps a 127.x host for the machine's own
     * address (which a proxy listening on loopback does not answer), so a loopback IPv4 host is
     * spelled as one 32-bit number, which it does not recognise and Java still parses.
     */
    static String dialable(String address) {
        int colon = address.lastIndexOf(':');
        String[] octets = address.substring(0, colon).split("\\.");
        if (octets.length != 4 || !octets[0].equals("127")) {
            return address;
        }
        long n = 0;
        for (String o : octets) {
            n = n * 256 + Integer.parseInt(o);
        }
        return n + address.substring(colon);
    }

    private void call(Echo echo, String method, String arg, int index, int count, Map<String, String> attachments) {
        Map<String, String> sent = new HashMap<>(attachments);
        sent.put("call-index", Integer.toString(index));
        try {
            for (Map.Entry<String, String> e : sent.entrySet()) {
                RpcContext.getClientAttachment().setAttachment(e.getKey(), e.getValue());
            }
            String expectedSuffix;
            String result;
            switch (method) {
                case "echo":
                    expectedSuffix = arg + "#" + index;
                    result = echo.echo(expectedSuffix);
                    break;
                case "fail":
                    expectedSuffix = null;
                    result = echo.fail();
                    break;
                case "attachment":
                    result = echo.attachment(arg);
                    check(Objects.equals(result, sent.get(arg)), index, result);
                    return;
                case "slow":
                    expectedSuffix = arg;
                    result = echo.slow(Integer.parseInt(arg));
                    break;
                case "gather":
                    expectedSuffix = arg + "#" + index;
                    result = echo.gather(expectedSuffix, count);
                    break;
                default:
                    throw new IllegalArgumentException("unknown --method " + method);
            }
            int colon = result == null ? -1 : result.indexOf(':');
            boolean matches = colon >= 0 && (expectedSuffix == null || result.substring(colon + 1).equals(expectedSuffix));
            if (matches) {
                synchronized (this) {
                    tags.merge(result.substring(0, colon), 1, Integer::sum);
                }
            }
            check(matches, index, result);
        } catch (Throwable t) {
            errors.incrementAndGet();
            synchronized (this) {
                errorTypes.merge(t.getClass().getName(), 1, Integer::sum);
                String message = String.valueOf(t.getMessage());
                if (errorMessages.size() < MAX_EXAMPLES && !errorMessages.contains(message)) {
                    errorMessages.add(message);
                }
            }
        } finally {
            RpcContext.getClientAttachment().clearAttachments();
        }
    }

    private void check(boolean matches, int index, String result) {
        if (matches) {
            ok.incrementAndGet();
            return;
        }
        mismatches.incrementAndGet();
        synchronized (this) {
            if (mismatchExamples.size() < MAX_EXAMPLES) {
                mismatchExamples.add("call " + index + " got " + result);
            }
        }
    }

    private synchronized String json(int step) {
        StringBuilder b = new StringBuilder("{");
        b.append("\"step\":").append(step);
        b.append(",\"ok\":").append(ok.get());
        b.append(",\"errors\":").append(errors.get());
        b.append(",\"mismatches\":").append(mismatches.get());
        b.append(",\"tags\":").append(object(tags));
        b.append(",\"error_types\":").append(object(errorTypes));
        b.append(",\"error_messages\":").append(array(errorMessages));
        b.append(",\"mismatch_examples\":").append(array(mismatchExamples));
        b.append(",\"elapsed_ms\":").append(elapsedMs);
        return b.append('}').toString();
    }

    private static String object(Map<String, Integer> m) {
        StringBuilder b = new StringBuilder("{");
        for (Map.Entry<String, Integer> e : m.entrySet()) {
            if (b.length() > 1) {
                b.append(',');
            }
            b.append(quote(e.getKey())).append(':').append(e.getValue());
        }
        return b.append('}').toString();
    }

    private static String array(List<String> l) {
        StringBuilder b = new StringBuilder("[");
        for (String s : l) {
            if (b.length() > 1) {
                b.append(',');
            }
            b.append(quote(s));
        }
        return b.append(']').toString();
    }

    private static String quote(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (ch < 0x20) {
                        b.append(String.format("\\u%04x", (int) ch));
                    } else {
                        b.append(ch);
                    }
            }
        }
        return b.append('"').toString();
    }
}
