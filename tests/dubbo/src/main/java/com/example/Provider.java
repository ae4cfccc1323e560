package com.example;

import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ProtocolConfig;
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.ServiceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;

/**
 * Exports com.example.Echo over the dubbo protocol with hessian2, no registry:
 * {@code Provider --port P --tag T [--version 1.0] [--group g] [--threads N]}.
 * Prints "ready" once the port accepts calls, then serves until killed.
 */
public final class Provider {
    public static void main(String[] argv) throws Exception {
        Args args = new Args(argv);
        int port = Integer.parseInt(args.required("port"));
        String tag = args.required("tag");

        ApplicationConfig app = new ApplicationConfig("sluice-echo-provider");
        // No QoS server: it would bind port 22222, and two providers would collide.
        app.setQosEnable(false);
        app.setRegisterMode("interface");

        ProtocolConfig protocol = new ProtocolConfig("dubbo", port);
        // Loopback only. Dubbo binds every interface when given a 127.x host (it takes those
        // for "none configured"), so 127.0.0.1 is spelled as one 32-bit number, which Java's
        // address parser accepts and Dubbo's check does not recognise.
        protocol.setHost("2130706433");
        protocol.setSerialization("hessian2");
        protocol.setPreferSerialization("hessian2");
        // A small pool, so a test can exhaust it (SERVER_THREADPOOL_EXHAUSTED_ERROR).
        protocol.setThreads(args.getInt("threads", 50));

        ServiceConfig<Echo> service = new ServiceConfig<>();
        service.setInterface(Echo.class);
        service.setRef(new EchoImpl(tag));
        service.setVersion(args.get("version", "1.0"));
        String group = args.get("group", null);
        if (group != null) {
            service.setGroup(group);
        }

        DubboBootstrap.getInstance()
                .application(app)
                .registry(new RegistryConfig(RegistryConfig.NO_AVAILABLE))
                .protocol(protocol)
                .service(service)
                .start();
        System.out.println("ready");
        System.out.flush();
        Thread.currentThread().join();
    }
}
