package com.example;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

import org.apache.dubbo.rpc.RpcContext;

/** The provider's implementation; `tag` tells providers apart in a test. */
public class EchoImpl implements Echo {
    /** The message `fail` throws: tests look for it in the consumer's error. */
    public static final String FAIL_MESSAGE = "echo failed on purpose";

    private static final long GATHER_WAIT_MS = TimeUnit.MINUTES.toMillis(1);

    /** The connections calls came in on (their remote addresses), shared by every export. */
    private static final Set<String> CONNECTIONS = ConcurrentHashMap.newKeySet();

    private static final Object GATHER = new Object();
    private static int gathered;
    private static long generation;

    private final String tag;

    public EchoImpl(String tag) {
        this.tag = tag;
    }

    /** Notes the connection (remote address) the current call came in on. */
    private static void noteConnection() {
        CONNECTIONS.add(RpcContext.getServiceContext().getRemoteAddressString());
    }

    /** The connections calls have come in on, by remote address, sorted. */
    static List<String> connections() {
        List<String> all = new ArrayList<>(CONNECTIONS);
        Collections.sort(all);
        return all;
    }

    @Override
    public String echo(String s) {
        noteConnection();
        return tag + ":" + s;
    }

    @Override
    public String fail() {
        noteConnection();
        throw new IllegalStateException(FAIL_MESSAGE + " (" + tag + ")");
    }

    @Override
    public String attachment(String key) {
        noteConnection();
        Object value = RpcContext.getServerAttachment().getObjectAttachment(key);
        return value == null ? null : value.toString();
    }

    @Override
    public String slow(int ms) {
        noteConnection();
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return tag + ":" + ms;
    }

    @Override
    public String gather(String s, int n) {
        noteConnection();
        synchronized (GATHER) {
            long mine = generation;
            gathered++;
            if (gathered >= n) {
                gathered = 0;
                generation++;
                GATHER.notifyAll();
            }
            long deadline = System.currentTimeMillis() + GATHER_WAIT_MS;
            while (generation == mine) {
                long left = deadline - System.currentTimeMillis();
                if (left <= 0) {
                    int held = gathered;
                    gathered--;
                    throw new IllegalStateException("gather: only " + held + " of " + n + " calls arrived");
                }
                try {
                    GATHER.wait(left);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("gather interrupted");
                }
            }
        }
        return tag + ":" + s;
    }
}
