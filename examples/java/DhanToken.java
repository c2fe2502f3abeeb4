// Reads the DhanHQ access token that dhan-login keeps, in one of three ways, and calls
// Dhan's profile endpoint with it. Plain java.net.http: no build tool, no library.
//
//   javac -d /tmp/dhan-example examples/java/DhanToken.java
//   java -cp /tmp/dhan-example DhanToken cli      # runs `dhan-login token`
//   java -cp /tmp/dhan-example DhanToken serve    # asks a running `dhan-login serve`
//   java -cp /tmp/dhan-example DhanToken file     # reads serve's token file
//
// On a 401 (DH-901) from Dhan the token is reported to its owner (`dhan-login token
// --rejected`, or serve's `POST .../token/rejected`), and the one that comes back is used.
//
// Environment (all optional): DHAN_LOGIN_PROFILE (default "default"),
// DHAN_LOGIN_STATE_DIR (default ~/.local/state/dhan-login), DHAN_LOGIN_SERVE_URL
// (default http://127.0.0.1:7787), DHAN_API_BASE_URL (default https://api.dhan.co/v2).

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;

public class DhanToken {
    static final String PROFILE = env("DHAN_LOGIN_PROFILE", "default");
    static final Path STATE = Path.of(env("DHAN_LOGIN_STATE_DIR",
        System.getProperty("user.home") + "/.local/state/dhan-login"));

    static String env(String name, String fallback) {
        String v = System.getenv(name);
        return v == null || v.isEmpty() ? fallback : v;
    }

    // [readme:java-cli]
    static String fromCli() throws Exception {
        var p = new ProcessBuilder("dhan-login", "token")
            .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String token = new String(p.getInputStream().readAllBytes()).trim();
        if (p.waitFor() != 0) throw new IllegalStateException("dhan-login token exited " + p.exitValue());
        return token;
    }
    // [/readme]

    // [readme:java-serve]
    static String fromServe() throws Exception {
        String key = Files.readString(STATE.resolve("serve.key")).strip();
        String url = env("DHAN_LOGIN_SERVE_URL", "http://127.0.0.1:7787") + "/v1/profiles/" + PROFILE + "/token";
        var req = HttpRequest.newBuilder(URI.create(url)).header("Authorization", "Bearer " + key).build();
        var res = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
        if (res.statusCode() != 200) throw new IllegalStateException("serve answered " + res.statusCode() + ": " + res.body());
        return field(res.body(), "access_token");  // or Jackson/Gson
    }
    // [/readme]

    // [readme:java-file]
    static String fromFile() throws Exception {
        return Files.readString(STATE.resolve("serve").resolve(PROFILE + ".token")).strip();
    }
    // [/readme]

    // [readme:java-rejected]
    // Dhan answered DH-901 (401): tell the token's owner, which checks it with Dhan and
    // hands back a new one only if it is dead. Never log in here: that would end the token
    // every other program holds.
    static String afterRefusal(String from) throws Exception {
        if (from.equals("serve")) {
            String key = Files.readString(STATE.resolve("serve.key")).strip();
            String url = env("DHAN_LOGIN_SERVE_URL", "http://127.0.0.1:7787") + "/v1/profiles/" + PROFILE + "/token/rejected";
            var req = HttpRequest.newBuilder(URI.create(url)).header("Authorization", "Bearer " + key)
                .POST(HttpRequest.BodyPublishers.noBody()).build();
            var res = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
            if (res.statusCode() != 200) throw new IllegalStateException("serve answered " + res.statusCode() + ": " + res.body());
            return field(res.body(), "access_token");
        }
        // `dhan-login token --rejected` asks a running serve itself when there is one.
        var p = new ProcessBuilder("dhan-login", "token", "--rejected")
            .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String token = new String(p.getInputStream().readAllBytes()).trim();
        if (p.waitFor() != 0) throw new IllegalStateException("dhan-login token --rejected exited " + p.exitValue());
        return token;
    }
    // [/readme]

    /** Dhan's profile answer, or null when it says the token is invalid (DH-901, HTTP 401). */
    static String profile(String token) throws Exception {
        var req = HttpRequest.newBuilder(URI.create(env("DHAN_API_BASE_URL", "https://api.dhan.co/v2") + "/profile"))
            .header("access-token", token).header("Accept", "application/json").build();
        var res = HttpClient.newHttpClient().send(req, HttpResponse.BodyHandlers.ofString());
        if (res.statusCode() == 401) return null;
        if (res.statusCode() != 200) throw new IllegalStateException("profile answered " + res.statusCode());
        return res.body();
    }

    /** One string field of a flat JSON object; enough for these answers. */
    static String field(String json, String name) {
        var m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        if (!m.find()) throw new IllegalStateException("no " + name + " in the answer");
        return m.group(1);
    }

    public static void main(String[] args) throws Exception {
        String from = args.length > 0 ? args[0] : "cli";
        String token = switch (from) {
            case "cli" -> fromCli();
            case "serve" -> fromServe();
            case "file" -> fromFile();
            default -> throw new IllegalArgumentException("usage: DhanToken cli|serve|file");
        };
        String body = profile(token);
        if (body == null) {
            System.err.println("Dhan refused the token (" + from + "): reporting it");
            token = afterRefusal(from);
            body = profile(token);
            if (body == null) throw new IllegalStateException("Dhan refused the token the owner handed back");
        }
        System.out.println("token (" + from + "): " + token);
        System.out.println("profile: client " + field(body, "dhanClientId") + ", valid until " + field(body, "tokenValidity"));
    }
}
