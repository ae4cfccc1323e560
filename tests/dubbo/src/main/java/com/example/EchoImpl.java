package com.example;

import org.apache.dubbo.rpc.RpcContext;

/** The provider's implementation; `tag` tells providers apart in a test. */
public class EchoImpl implements Echo {
    /** The message `fail` throws: tests look for it in the consumer's error. */
    public static final String FAIL_MESSAGE = "echo failed on purpose";

    private final String tag;

    public EchoImpl(String tag) {
        this.tag = tag;
    }

    @Override
    public String echo(String s) {
        return tag + ":" + s;
    }

    @Override
    public String fail() {
        throw new IllegalStateException(FAIL_MESSAGE + " (" + tag + ")");
    }

    @Override
    public String attachment(String key) {
        Object value = RpcContext.getServerAttachment().getObjectAttachment(key);
        return value == null ? null : value.toString();
    }

    @Override
    public String slow(int ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return tag + ":" + ms;
    }
}
