// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//
// A JVM client and server for tests/e2e/test_dualstack.sh. Plain java.net
// sockets with the JVM's defaults: with IPv6 present (every pod has ::1) the
// JVM opens AF_INET6 sockets and dials IPv4 addresses as ::ffff:a.b.c.d,
// and ServerSocket listens on :: (dual stack). Output lines are parsed by
// the test:
//   who HOST PORT N        N connects, each reads the server's id line:
//                          "v1=N v2=N ... ERR=N" (names sorted)
//   hold HOST PORT N FILE  N connects kept open: "conn I NAME" / "conn I ERR MSG",
//                          "done"; closes them once FILE exists (30 s at most)
//   bulk HOST PORT BYTES   BYTES to an sm-server sink, which answers
//                          "<bytes> <fnv1a64>": "bulk ok BYTES" / "bulk MISMATCH ..."
//   echo HOST PORT BYTES   BYTES to an echo server, read back and compared
//                          (a writer thread): "echo ok BYTES" / "echo MISMATCH at I"
//   http HOST PORT PATH    GET PATH (Connection: close): the status line, then
//                          the body's "id=" line
//   serve PORT             echo server on the wildcard address (::): "ready"
import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.util.*;

public class Dual {
    static final int TIMEOUT_MS = 10000;

    static Socket dial(String host, int port) throws IOException {
        Socket s = new Socket();
        s.setSoTimeout(TIMEOUT_MS);
        s.connect(new InetSocketAddress(host, port), TIMEOUT_MS);
        return s;
    }

    static String readLine(InputStream in) throws IOException {
        StringBuilder b = new StringBuilder();
        int c;
        while ((c = in.read()) >= 0 && c != '\n')
            b.append((char) c);
        if (c < 0 && b.length() == 0)
            throw new EOFException("EOF");
        return b.toString();
    }

    static byte pattern(long i) {
        return (byte) (i % 251);
    }

    static String err(Exception e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    static void who(String host, int port, int n) {
        TreeMap<String, Integer> t = new TreeMap<>();
        int errs = 0;
        for (int i = 0; i < n; i++) {
            try (Socket s = dial(host, port)) {
                t.merge(readLine(s.getInputStream()), 1, Integer::sum);
            } catch (Exception e) {
                errs++;
            }
        }
        StringBuilder b = new StringBuilder();
        t.forEach((k, v) -> b.append(k).append('=').append(v).append(' '));
        System.out.println(b + "ERR=" + errs);
    }

    static void hold(String host, int port, int n, String file) throws Exception {
        List<Socket> open = new ArrayList<>();
        for (int i = 1; i <= n; i++) {
            try {
                Socket s = dial(host, port);
                open.add(s);
                System.out.println("conn " + i + " " + readLine(s.getInputStream()));
            } catch (Exception e) {
                System.out.println("conn " + i + " ERR " + err(e));
            }
            System.out.flush();
        }
        System.out.println("done");
        System.out.flush();
        for (int i = 0; i < 600 && !Files.exists(Paths.get(file)); i++)
            Thread.sleep(50);
        for (Socket s : open)
            s.close();
    }

    static void bulk(String host, int port, long bytes) throws Exception {
        long h = 0xcbf29ce484222325L;
        try (Socket s = dial(host, port)) {
            OutputStream out = s.getOutputStream();
            byte[] buf = new byte[65536];
            for (long off = 0; off < bytes; ) {
                int len = (int) Math.min(buf.length, bytes - off);
                for (int i = 0; i < len; i++) {
                    buf[i] = pattern(off + i);
                    h ^= buf[i] & 0xff;
                    h *= 0x100000001b3L;
                }
                out.write(buf, 0, len);
                off += len;
            }
            s.shutdownOutput();
            String want = bytes + " " + String.format("%016x", h);
            String got = readLine(s.getInputStream());
            System.out.println(got.equals(want) ? "bulk ok " + bytes : "bulk MISMATCH sent " + want + " got " + got);
        }
    }

    static void echo(String host, int port, long bytes) throws Exception {
        try (Socket s = dial(host, port)) {
            OutputStream out = s.getOutputStream();
            Thread w = new Thread(() -> {
                byte[] buf = new byte[16384];
                try {
                    for (long off = 0; off < bytes; ) {
                        int len = (int) Math.min(buf.length, bytes - off);
                        for (int i = 0; i < len; i++)
                            buf[i] = pattern(off + i);
                        out.write(buf, 0, len);
                        off += len;
                    }
                } catch (IOException e) {
                    System.out.println("echo write ERR " + err(e));
                }
            });
            w.start();
            InputStream in = s.getInputStream();
            byte[] buf = new byte[65536];
            long got = 0;
            while (got < bytes) {
                int r = in.read(buf);
                if (r < 0)
                    break;
                for (int i = 0; i < r; i++)
                    if (buf[i] != pattern(got + i)) {
                        System.out.println("echo MISMATCH at " + (got + i));
                        return;
                    }
                got += r;
            }
            w.join();
            System.out.println(got == bytes ? "echo ok " + bytes : "echo SHORT " + got);
        }
    }

    static void http(String host, int port, String path) throws Exception {
        try (Socket s = dial(host, port)) {
            String req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
            s.getOutputStream().write(req.getBytes(StandardCharsets.US_ASCII));
            BufferedReader r = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.US_ASCII));
            System.out.println(r.readLine());
            for (String l; (l = r.readLine()) != null; )
                if (l.startsWith("id="))
                    System.out.println(l);
        }
    }

    static void serve(int port) throws Exception {
        try (ServerSocket ss = new ServerSocket(port, 128)) {
            System.out.println("ready");
            System.out.flush();
            for (;;) {
                Socket c = ss.accept();
                new Thread(() -> {
                    try (Socket s = c) {
                        InputStream in = s.getInputStream();
                        OutputStream out = s.getOutputStream();
                        byte[] buf = new byte[65536];
                        for (int r; (r = in.read(buf)) > 0; )
                            out.write(buf, 0, r);
                    } catch (IOException e) {
                        // the client went away
                    }
                }).start();
            }
        }
    }

    public static void main(String[] a) throws Exception {
        switch (a[0]) {
        case "who": who(a[1], Integer.parseInt(a[2]), Integer.parseInt(a[3])); break;
        case "hold": hold(a[1], Integer.parseInt(a[2]), Integer.parseInt(a[3]), a[4]); break;
        case "bulk": bulk(a[1], Integer.parseInt(a[2]), Long.parseLong(a[3])); break;
        case "echo": echo(a[1], Integer.parseInt(a[2]), Long.parseLong(a[3])); break;
        case "http": http(a[1], Integer.parseInt(a[2]), a[3]); break;
        case "serve": serve(Integer.parseInt(a[1])); break;
        default: System.err.println("usage: see Dual.java"); System.exit(2);
        }
    }
}
