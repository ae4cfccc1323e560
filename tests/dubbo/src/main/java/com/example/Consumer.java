package com.example;

import java.util.ArrayList;
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
 * Consumer --address 127.0.0.1:P [--version 1.0] [--group g] --method echo|fail|attachment|slow
 *          [--arg x] [--count N] [--concurrency C] [--attachment k=v]... [--timeout ms]
 *          [--heartbeat ms] [--linger ms]
 * </pre>
 * Prints one JSON line: {"ok":..,"errors":..,"mismatches":..,"tags":{tag:count},
 * "error_types":{class:count},"error_messages":[..],"mismatch_examples":[..],"elapsed_ms":..}.
 * Every call carries the attachment "call-index" = its index, and echo's argument is
 * "arg#index": a reply that answers another call (crossed request ids) counts as a mismatch.
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
        Args args = new Args(argv);
        String address = args.required("address");
        String method = args.get("method", "echo");
        String arg = args.get("arg", "x");
        int count = args.getInt("count", 1);
        int concurrency = Math.max(1, args.getInt("concurrency", 1));
        Map<String, String> attachments = new HashMap<>();
        for (String kv : args.all("attachment")) {
            int eq = kv.indexOf('=');
            if (eq < 0) {
                throw new IllegalArgumentException("--attachment wants k=v, got " + kv);
            }
            attachments.put(kv.substring(0, eq), kv.substring(eq + 1));
        }

        ApplicationConfig app = new ApplicationConfig("sluice-echo-consumer");
        app.setQosEnable(false);

        // A direct URL, no registry. hessian2 on purpose: Dubbo 3.2+ would otherwise prefer
        // fastjson2, which Sluice does not read.
        StringBuilder url = new StringBuilder("dubbo://" + dialable(address) + "/" + Echo.class.getName()
                + "?serialization=hessian2&prefer.serialization=hessian2");
        String heartbeat = args.get("heartbeat", null);
        if (heartbeat != null) {
            url.append("&heartbeat=").append(heartbeat);
        }
        ReferenceConfig<Echo> reference = new ReferenceConfig<>();
        reference.setInterface(Echo.class);
        reference.setUrl(url.toString());
        reference.setVersion(args.get("version", "1.0"));
        String group = args.get("group", null);
        if (group != null) {
            reference.setGroup(group);
        }
        reference.setTimeout(args.getInt("timeout", 3000));
        // One try per call: a test through the proxy sees exactly what the proxy did.
        reference.setRetries(0);
        reference.setCheck(false);

        DubboBootstrap bootstrap = DubboBootstrap.getInstance().application(app).reference(reference);
        bootstrap.start();
        Echo echo = reference.get();

        Consumer c = new Consumer();
        long start = System.nanoTime();
        ExecutorService pool = Executors.newFixedThreadPool(concurrency);
        for (int i = 0; i < count; i++) {
            final int index = i;
            pool.execute(() -> c.call(echo, method, arg, index, attachments));
        }
        pool.shutdown();
        pool.awaitTermination(10, TimeUnit.MINUTES);
        long elapsedMs = (System.nanoTime() - start) / 1_000_000;
        int linger = args.getInt("linger", 0);
        if (linger > 0) {
            Thread.sleep(linger);
        }
        System.out.println(c.json(elapsedMs));
        System.out.flush();
        // Dubbo's non-daemon threads would keep the JVM up.
        Runtime.getRuntime().halt(0);
    }

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

    private void call(Echo echo, String method, String arg, int index, Map<String, String> attachments) {
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

    private synchronized String json(long elapsedMs) {
        StringBuilder b = new StringBuilder("{");
        b.append("\"ok\":").append(ok.get());
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
