/// The console's templates (Mustache: `{{x}}` is HTML-escaped, never `{{{x}}}`), its stylesheet and its one script.
///
/// They are compiled into the binary: the console serves every asset itself and loads nothing from elsewhere.
enum ConsoleTemplates {
    static let head = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        {{#refresh}}<meta http-equiv="refresh" content="1; url=/">{{/refresh}}
        <title>{{title}} · Keyhold console</title>
        <link rel="stylesheet" href="/static/console.css">
        <script src="/static/console.js" defer></script>
        </head><body>
        <header class="bar"><span class="brand">Keyhold</span>{{#tenant}}<span class="tenant">{{tenant}}</span>{{/tenant}}
        {{#signedIn}}<form method="post" action="/signout" class="inline"><input type="hidden" name="csrf" value="{{csrf}}">\
        <button class="link" type="submit" id="signout">Sign out</button></form>{{/signedIn}}</header>
        <main>
        """

    static let foot = """
        </main><footer>Keyhold tenant console</footer></body></html>
        """

    static let message = """
        {{> head}}
        <section class="card"><h1>{{title}}</h1><p id="message">{{text}}</p></section>
        {{> foot}}
        """

    static let signIn = """
        {{> head}}
        <section class="card" id="signin"><h1>Sign in to tenant {{target}}</h1>
        <p>This link opens the Keyhold console of tenant <strong id="target">{{target}}</strong>. It works once.</p>
        {{#current}}<p class="error" id="switching" role="alert">This browser is signed in to tenant <strong>{{current}}</strong>. \
        Continuing signs it out of {{current}} and into {{target}}: what you do next acts on {{target}}'s keys. \
        If you did not expect a link for {{target}}, close this page.</p>{{/current}}
        <form method="post" action="{{action}}"><input type="hidden" name="signin" value="{{nonce}}">\
        <button type="submit" id="continue">Sign in as {{target}}</button></form>
        </section>
        {{> foot}}
        """

    static let dashboard = """
        {{> head}}
        {{#notice}}<p class="notice" id="notice" role="status">{{notice}}</p>{{/notice}}
        {{#error}}<p class="error" id="error" role="alert">{{error}}</p>{{/error}}
        <section class="card" id="keys"><h2>Provider keys</h2>
        <p class="muted">Plan <strong>{{plan}}</strong> · tenant {{state}}</p>
        {{#managed}}<p>Your plan uses Keyhold's metered access: your agent needs no provider key of its own.</p>{{/managed}}
        {{#keys}}
        <div class="key" id="key-{{provider}}">
        <div class="key-head"><strong>{{provider}}</strong> <span class="pill {{state}}">{{state}}</span> <span class="muted">v{{version}}</span></div>
        <dl><dt>Fingerprint</dt><dd><code>{{fingerprint}}</code></dd>
        <dt>Health</dt><dd class="health-{{health}}">{{health}}{{#healthDetail}} · {{healthDetail}}{{/healthDetail}}</dd>
        <dt>Last validated</dt><dd>{{validatedAt}}</dd><dt>Added</dt><dd>{{createdAt}}</dd></dl>
        {{#live}}
        <form method="post" action="/keys/{{provider}}/replace" class="replace" autocomplete="off">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label for="new-key-{{provider}}">Replace with a new key</label>
        <input type="password" id="new-key-{{provider}}" name="key" autocomplete="off" spellcheck="false" required placeholder="paste the new key">
        <button type="submit" id="replace-{{provider}}">Validate and replace</button>
        </form>
        <div class="actions">
        <form method="post" action="/keys/{{provider}}/validate" class="inline"><input type="hidden" name="csrf" value="{{csrf}}">\
        <button type="submit" class="secondary" id="validate-{{provider}}">Check now</button></form>
        <form method="post" action="/keys/{{provider}}/revoke" class="inline confirm" data-confirm="Revoke this {{provider}} key? Your agent stops until a new key is set.">\
        <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit" class="danger" id="revoke-{{provider}}">Revoke</button></form>
        </div>
        {{/live}}
        </div>
        {{/keys}}
        {{^managed}}{{^keys}}<p>No provider key yet: ask your hosting provider to set the first one.</p>{{/keys}}{{/managed}}
        </section>
        {{#rotation}}
        <section class="card" id="rotation" data-state="{{state}}"><h2>Key rotation</h2>
        <p>{{provider}}{{#toVersion}} → version {{toVersion}}{{/toVersion}} · started {{startedAt}} · <strong id="rotation-state">{{state}}</strong></p>
        <ol class="steps" id="rotation-steps">{{#steps}}<li class="{{status}}" data-step="{{step}}">{{label}}</li>{{/steps}}</ol>
        <p class="muted" id="rotation-detail">{{detail}}</p>
        </section>
        {{/rotation}}
        <section class="card" id="agent"><h2>Agent</h2>
        {{#sandboxes}}<p><span class="pill {{state}}">{{state}}</span> <code>{{unit}}</code> · systemd {{systemdState}} · restarts {{restarts}}\
        {{#lastError}}<br><span class="error-text">{{lastError}}</span>{{/lastError}}</p>{{/sandboxes}}
        {{^sandboxes}}<p id="agent-idle">Your agent is not running.</p>{{/sandboxes}}
        {{#hasLogs}}<h3>Recent log lines</h3><pre id="logs">{{#logs}}{{.}}
        {{/logs}}</pre>{{/hasLogs}}
        </section>
        {{#usage}}
        <section class="card" id="usage"><h2>Usage this month</h2>
        <p>{{requests}} requests</p>
        {{#caps}}<div class="cap"><span>{{label}}</span><span class="muted">{{used}} of {{limit}} ({{percent}}%)</span>\
        <progress max="100" value="{{bar}}">{{percent}}%</progress></div>{{/caps}}
        <svg class="chart" id="usage-chart" viewBox="0 0 310 120" role="img" aria-label="Tokens per day this month">
        <line x1="0" y1="100" x2="310" y2="100" class="axis"/>
        {{#days}}<rect x="{{x}}" y="{{y}}" width="8" height="{{height}}"><title>{{day}}: {{tokens}} tokens</title></rect>{{/days}}
        <text x="0" y="116">1</text><text x="290" y="116">{{lastDay}}</text>
        </svg>
        </section>
        {{/usage}}
        <section class="card" id="injections"><h2>Key injections</h2>
        {{#hasInjections}}<table><thead><tr><th>When</th><th>Key</th><th>Fingerprint</th></tr></thead><tbody>
        {{#injections}}<tr><td>{{time}}</td><td>{{provider}} v{{version}}</td><td><code>{{fingerprint}}</code></td></tr>{{/injections}}
        </tbody></table>{{/hasInjections}}
        {{^injections}}<p>No key was injected into your agent yet.</p>{{/injections}}
        </section>
        {{#brokered}}
        <section class="card" id="secrets"><h2>Secrets</h2>
        <p>Your agent holds placeholders; each secret is written into its header on its way to its host, and nowhere else.</p>
        {{#hasSecrets}}<table><thead><tr><th>Name</th><th>Sent to</th><th>Header</th><th>Variable</th><th>Version</th><th>Fingerprint</th></tr></thead><tbody>
        {{#secrets}}<tr><td>{{name}}</td><td>{{host}}</td><td>{{header}}</td><td><code>{{env}}</code></td><td>v{{version}} · {{state}}</td>\
        <td><code>{{fingerprint}}</code></td></tr>{{/secrets}}
        </tbody></table>{{/hasSecrets}}
        {{^hasSecrets}}<p>No secret yet.</p>{{/hasSecrets}}
        </section>
        <section class="card" id="key-uses"><h2>Key uses</h2>
        {{#hasKeyUses}}<table><thead><tr><th>Last use</th><th>Key</th><th>Requests</th><th>Destinations</th></tr></thead><tbody>
        {{#keyUses}}<tr><td>{{time}}</td><td>{{key}} v{{version}}</td><td>{{count}}</td><td>{{destinations}}</td></tr>{{/keyUses}}
        </tbody></table>{{/hasKeyUses}}
        {{^hasKeyUses}}<p>Your keys were not used through the broker yet.</p>{{/hasKeyUses}}
        {{#hasMisuses}}<h3>Placeholders refused on their way elsewhere</h3><table><thead><tr><th>When</th><th>Placeholder of</th><th>Destination</th></tr></thead><tbody>
        {{#misuses}}<tr><td>{{time}}</td><td>{{key}}</td><td>{{destination}}</td></tr>{{/misuses}}
        </tbody></table>{{/hasMisuses}}
        </section>
        {{/brokered}}
        <section class="card" id="webhook"><h2>Alert webhook</h2>
        <p>{{#webhookHost}}Usage alerts are posted to a URL on <strong>{{webhookHost}}</strong>.{{/webhookHost}}\
        {{^webhookHost}}No webhook of your own: alerts go to your plan's default, if any.{{/webhookHost}}</p>
        <form method="post" action="/webhook" autocomplete="off"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="webhook-url">New webhook URL (leave empty to remove yours)</label>
        <input type="url" id="webhook-url" name="url" placeholder="https://hooks.example.com/…">
        <button type="submit" id="webhook-save">Save</button></form>
        </section>
        {{> foot}}
        """

    static let css = """
        :root{--fg:#1d2430;--muted:#5d6778;--bg:#f4f6f9;--card:#fff;--line:#dde2ea;--accent:#2457c5;--ok:#1d7a46;--bad:#b42318;--warn:#9a6700}
        *{box-sizing:border-box}
        body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
        .bar{display:flex;align-items:center;gap:.6rem;padding:.7rem 1rem;background:#17233b;color:#fff}
        .brand{font-weight:700;letter-spacing:.02em}.tenant{opacity:.85}.bar form{margin-left:auto}
        main{max-width:46rem;margin:0 auto;padding:.8rem}
        .card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:.9rem 1rem;margin:.8rem 0}
        h1,h2{margin:.1rem 0 .6rem;font-size:1.15rem}h3{font-size:1rem;margin:.8rem 0 .3rem}
        .muted{color:var(--muted)}code{font-size:.9em;word-break:break-all}
        .key{border-top:1px solid var(--line);padding:.7rem 0}.key:first-of-type{border-top:0}
        dl{display:grid;grid-template-columns:auto 1fr;gap:.15rem .8rem;margin:.5rem 0}dt{color:var(--muted)}dd{margin:0}
        .pill{display:inline-block;padding:0 .5rem;border-radius:99px;font-size:.8rem;background:#e8ecf3}
        .pill.active,.pill.running{background:#dcf3e5;color:var(--ok)}.pill.failed,.pill.revoked{background:#fde3e1;color:var(--bad)}
        .pill.pending,.pill.starting{background:#fff1cc;color:var(--warn)}
        .health-ok{color:var(--ok)}.health-invalid,.health-failed{color:var(--bad)}
        label{display:block;margin:.6rem 0 .25rem;font-weight:600}
        input[type=password],input[type=url]{width:100%;padding:.55rem;border:1px solid var(--line);border-radius:6px;font:inherit}
        button{margin-top:.5rem;padding:.5rem .9rem;border:0;border-radius:6px;background:var(--accent);color:#fff;font:inherit;cursor:pointer}
        button.secondary{background:#e8ecf3;color:var(--fg)}button.danger{background:var(--bad)}
        button.link{background:none;color:#fff;text-decoration:underline;margin:0;padding:0}
        .actions{display:flex;gap:.5rem;flex-wrap:wrap}form.inline{display:inline}
        .notice,.error{padding:.6rem .8rem;border-radius:8px}.notice{background:#dcf3e5}.error{background:#fde3e1}.error-text{color:var(--bad)}
        .steps{list-style:none;padding:0;margin:.4rem 0;display:flex;flex-wrap:wrap;gap:.3rem}
        .steps li{padding:.2rem .55rem;border-radius:6px;background:#e8ecf3;color:var(--muted);font-size:.85rem}
        .steps li.done{background:#dcf3e5;color:var(--ok)}.steps li.current{background:#fff1cc;color:var(--warn);font-weight:600}
        .steps li.failed{background:#fde3e1;color:var(--bad)}
        pre{background:#0f1726;color:#d7e0ee;padding:.6rem;border-radius:6px;overflow-x:auto;font-size:.8rem;max-height:16rem}
        .cap{display:grid;grid-template-columns:1fr auto;gap:.1rem .5rem;margin:.5rem 0}.cap progress{grid-column:1/3;width:100%;height:.7rem}
        .chart{width:100%;height:auto;margin-top:.6rem}.chart rect{fill:var(--accent)}.chart .axis{stroke:var(--line)}.chart text{font-size:9px;fill:var(--muted)}
        table{width:100%;border-collapse:collapse;font-size:.85rem}th,td{text-align:left;padding:.3rem .3rem;border-bottom:1px solid var(--line)}
        footer{text-align:center;color:var(--muted);font-size:.8rem;padding:1rem}
        @media (max-width:480px){body{font-size:14px}main{padding:.4rem}.card{padding:.75rem}th:nth-child(3),td:nth-child(3){display:none}}
        """

    /// Asks before a revoke. (A running rotation is followed without script: the page reloads itself every second.)
    static let script = """
        "use strict";
        document.addEventListener("submit", function (event) {
          var form = event.target;
          if (form.classList.contains("confirm") && !window.confirm(form.dataset.confirm)) { event.preventDefault(); }
        });
        """
}
