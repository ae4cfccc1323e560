package com.example;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

import org.apache.dubbo.config.ApplicationConfig;
import org.apache.dubbo.config.ProtocolConfig;
import org.apache.dubbo.config.RegistryConfig;
import org.apache.dubbo.config.ServiceConfig;
import org.apache.dubbo.config.bootstrap.DubboBootstrap;

/**
 * Exports com.example.Echo over the dubbo protocol with hessian2, no registry:
 * {@code Provider --port P --tag T [--version 1.0] [--group g] [--threads N] [--export VERSION[:GROUP]]...}.
 * Each {@code --export} exports the service under that version and group (instead of
 * {@code --version}/{@code --group}), so one JVM can serve every variant a routing test names.
 * Prints "ready" once the port accepts calls, then serves until killed. A line "connections" on
 * stdin prints "connections" followed by the remote address of every connection a call has come
 * in on (a test counts the connections a proxy made).
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

        List<String> exports = new ArrayList<>(args.all("export"));
        if (exports.isEmpty()) {
            String group = args.get("group", null);
            exports.add(args.get("version", "1.0") + (group == null ? "" : ":" + group));
        }
        DubboBootstrap bootstrap = DubboBootstrap.getInstance()
                .application(app)
                .registry(new RegistryConfig(RegistryConfig.NO_AVAILABLE))
                .protocol(protocol);
        EchoImpl impl = new EchoImpl(tag);
        for (String export : exports) {
            String[] versionGroup = export.split(":", 2);
            ServiceConfig<Echo> service = new ServiceConfig<>();
            service.setInterface(Echo.class);
            service.setRef(impl);
            service.setVersion(versionGroup[0]);
            if (versionGroup.length == 2) {
                service.setGroup(versionGroup[1]);
            }
            bootstrap.service(service);
        }
        bootstrap.start();
        System.out.println("ready");
        System.out.flush();
        BufferedReader stdin = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = stdin.readLine(); line != null; line = stdin.readLine()) {
            if (line.equals("connections")) {
                List<String> seen = new ArrayList<>();
                seen.add("connections");
                seen.addAll(EchoImpl.connections());
                System.out.println(String.join(" ", seen));
                System.out.flush();
            }
        }
        Thread.currentThread().join();
    }
}
