package com.example;

/** The service the fixture exports: each method exercises one thing a proxy must carry. */
public interface Echo {
    /** Answers "tag:s", so a test sees which provider served a call and that the reply is its own. */
    String echo(String s);

    /** Always throws, with a known message: a response carrying an exception. */
    String fail();

    /** The value of the attachment `key` the call carried (null if none): attachments survive the hop. */
    String attachment(String key);

    /** Sleeps `ms` milliseconds, then answers "tag:ms": for timeouts. */
    String slow(int ms);

    /**
     * Holds the call until `n` gather calls are held at once (all of them in flight together),
     * then answers "tag:s"; throws if they do not all arrive within a minute.
     */
    String gather(String s, int n);
}
