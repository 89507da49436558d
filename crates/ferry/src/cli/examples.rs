//! An example for every command, shown under its `--help` (and in docs/cli.md and the man
//! pages): the command path, then one or more command lines, each of which the tests parse.
//! A group of commands (`ferry team`) shows the first examples of its commands.

/// `(command path, example lines)`, in the order `ferry help` lists the commands.
pub const EXAMPLES: &[(&str, &[&str])] = &[
    ("ferry", &["ferry status", "ferry deploy shop-web 1.4.0 --to dev --wait"]),
    ("ferry server", &[
        "ferry server --config /etc/ferry/server.toml",
        "ferry server --data /var/lib/ferry --listen 0.0.0.0:7070 --tls --tls-name ferry.example.com",
    ]),
    ("ferry server check-config", &["ferry server check-config /etc/ferry/server.toml"]),
    ("ferry server fsck", &["ferry server fsck"]),
    ("ferry server migrate", &[
        "ferry server migrate --from /var/lib/ferry --to postgres://ferry@db.example.com/ferry",
    ]),
    ("ferry server backup", &["ferry server backup --data /var/lib/ferry --out /backups/ferry-2026-12-05.tar.zst"]),
    ("ferry server rotate-secret-key", &["ferry server rotate-secret-key --data /var/lib/ferry"]),
    ("ferry server restore", &["ferry server restore /backups/ferry-2026-12-05.tar.zst --data /var/lib/ferry-restored"]),
    ("ferry demo", &["ferry demo --listen 127.0.0.1:8080"]),
    ("ferry doctor", &["ferry doctor", "ferry doctor --json"]),
    ("ferry check", &["ferry check build/"]),
    ("ferry login", &["ferry login --server https://ferry.example.com:7070 --token TOKEN --ca-cert ferry-ca.pem"]),
    ("ferry whoami", &["ferry whoami"]),
    ("ferry team create", &["ferry team create shop"]),
    ("ferry team list", &["ferry team list"]),
    ("ferry team members", &["ferry team members shop"]),
    ("ferry team add", &["ferry team add shop dana --role lead"]),
    ("ferry team remove", &["ferry team remove shop dana"]),
    ("ferry team support", &["ferry team support shop"]),
    ("ferry team rotation", &["ferry team rotation shop --members amy,bob --shift 7d --escalate-after 15m"]),
    ("ferry user create", &["ferry user create dana --role developer --team shop --team blog:viewer"]),
    ("ferry user list", &["ferry user list"]),
    ("ferry user rotate-token", &["ferry user rotate-token", "ferry user rotate-token dana"]),
    ("ferry user set-password", &["ferry user set-password"]),
    ("ferry user disable", &["ferry user disable dana"]),
    ("ferry user enable", &["ferry user enable dana"]),
    ("ferry role list", &["ferry role list"]),
    ("ferry role set", &["ferry role set developer --env prd --level view"]),
    ("ferry env list", &["ferry env list"]),
    ("ferry env create", &["ferry env create qa --after dev"]),
    ("ferry env delete", &["ferry env delete qa"]),
    ("ferry env rename", &["ferry env rename qa uat"]),
    ("ferry env set", &["ferry env set prd --approvals 2 --self-approval deny", "ferry env set prd --freeze \"0 18 * * FRI 64h\""]),
    ("ferry env freeze", &["ferry env freeze prd --for 4h --reason \"release night\""]),
    ("ferry env unfreeze", &["ferry env unfreeze prd"]),
    ("ferry app create", &["ferry app create shop-web --team shop --keep 10"]),
    ("ferry app set", &["ferry app set shop-web --keep 20 --backup-every 1d"]),
    ("ferry app list", &["ferry app list"]),
    ("ferry app show", &["ferry app show shop-web"]),
    ("ferry app place", &["ferry app place shop-web --env prd --targets web-1,web-2"]),
    ("ferry app grant", &["ferry app grant shop-web --user olga --env prd --level deploy"]),
    ("ferry app grants", &["ferry app grants shop-web"]),
    ("ferry app maintainer", &["ferry app maintainer shop-web --team ops"]),
    ("ferry release create", &[
        "ferry release create shop-web 1.4.0 --from build/",
        "ferry release create shop-web 1.4.0 --from \"git+https://git.example.com/shop.git#v1.4.0\"",
    ]),
    ("ferry release list", &["ferry release list shop-web"]),
    ("ferry release prune", &["ferry release prune shop-web"]),
    ("ferry release show", &["ferry release show shop-web 1.4.0"]),
    ("ferry release diff", &["ferry release diff shop-web 1.3.0 1.4.0"]),
    ("ferry release export", &["ferry release export shop-web 1.4.0 /tmp/shop-1.4.0"]),
    ("ferry target enroll", &["ferry target enroll prd web-1"]),
    ("ferry target list", &["ferry target list", "ferry target list --env prd"]),
    ("ferry target remove", &["ferry target remove web-1"]),
    ("ferry agent", &["ferry agent --config /etc/ferry/agent.toml", "ferry agent --root /srv/ferry"]),
    ("ferry agent enroll", &["ferry agent enroll --config /etc/ferry/agent.toml TOKEN"]),
    ("ferry agent check-config", &["ferry agent check-config /etc/ferry/agent.toml"]),
    ("ferry deploy", &["ferry deploy shop-web 1.4.0 --to dev --wait"]),
    ("ferry rollback", &["ferry rollback shop-web --env prd --reason \"checkout broken\""]),
    ("ferry promote", &["ferry promote shop-web --from pp --to prd --reason \"release 1.4\""]),
    ("ferry approve", &["ferry approve 42 --reason \"checked in pp\""]),
    ("ferry reject", &["ferry reject 42 --reason \"not this week\""]),
    ("ferry deployment show", &["ferry deployment show 42", "ferry deployment show 42 --watch 5s"]),
    ("ferry deployment list", &["ferry deployment list shop-web"]),
    ("ferry deployment logs", &["ferry deployment logs 42 --target web-1"]),
    ("ferry deployment cancel", &["ferry deployment cancel 42 --reason \"wrong release\""]),
    ("ferry status", &["ferry status", "ferry status shop-web --watch"]),
    ("ferry drift", &["ferry drift", "ferry drift shop-web --refresh"]),
    ("ferry drift capture", &["ferry drift capture web-1 shop-web --as 1.4.1"]),
    ("ferry drift revert", &["ferry drift revert web-1 shop-web"]),
    ("ferry backup create", &["ferry backup create shop-web --env prd"]),
    ("ferry backup list", &["ferry backup list shop-web"]),
    ("ferry backup show", &["ferry backup show 7"]),
    ("ferry backup restore", &["ferry backup restore 7 --target web-1"]),
    ("ferry backup export", &["ferry backup export 7 /tmp/shop-backup-7"]),
    ("ferry config set", &["ferry config set shop-web --env prd LOG_LEVEL=info CACHE_TTL=60"]),
    ("ferry config unset", &["ferry config unset shop-web --env prd CACHE_TTL"]),
    ("ferry config show", &["ferry config show shop-web --env prd"]),
    ("ferry config history", &["ferry config history shop-web --env prd"]),
    ("ferry config apply", &["ferry config apply shop-web --env prd --wait"]),
    ("ferry config diff", &["ferry config diff shop-web 3 4"]),
    ("ferry audit", &["ferry audit --app shop-web --since 2026-12-01", "ferry audit verify"]),
    ("ferry audit verify", &["ferry audit verify"]),
    ("ferry channel add", &[
        "ferry channel add shop --webhook https://chat.example.com/hooks/shop",
        "ferry channel add shop --email oncall@example.com --smtp smtp://mail.example.com:587 --from ferry@example.com",
    ]),
    ("ferry channel list", &["ferry channel list shop"]),
    ("ferry channel remove", &["ferry channel remove shop 3"]),
    ("ferry channel test", &["ferry channel test shop 3"]),
    ("ferry channel deliveries", &["ferry channel deliveries shop"]),
    ("ferry incident open", &["ferry incident open shop-web --env prd --severity critical --title \"checkout fails\""]),
    ("ferry incident list", &["ferry incident list shop-web"]),
    ("ferry incident show", &["ferry incident show 3"]),
    ("ferry incident ack", &["ferry incident ack 3 --note \"looking into it\""]),
    ("ferry incident resolve", &["ferry incident resolve 3 --note \"hotfix 1.0.1 in prd\""]),
    ("ferry hotfix start", &["ferry hotfix start 3 --wait"]),
    ("ferry backlog list", &["ferry backlog list shop-web"]),
    ("ferry backport list", &["ferry backport list shop-web"]),
    ("ferry backport waive", &["ferry backport waive 1 --reason \"dev was rewritten without that code\""]),
    ("ferry route list", &["ferry route list"]),
    ("ferry route set", &["ferry route set infrastructure --team ops"]),
    ("ferry route remove", &["ferry route remove infrastructure"]),
    ("ferry completions", &["ferry completions bash > /etc/bash_completion.d/ferry"]),
    ("ferry man", &["ferry man --out /usr/local/share/man/man1"]),
];

/// The example lines of the command at `path`: its own, or for a group of commands
/// without any, the first example of each of its first two commands.
pub fn lines_of(command: &clap::Command, path: &str) -> Vec<String> {
    if let Some((_, lines)) = EXAMPLES.iter().find(|(p, _)| *p == path) {
        return lines.iter().map(|line| line.to_string()).collect();
    }
    command
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
        .take(2)
        .filter_map(|sub| {
            lines_of(sub, &format!("{path} {}", sub.get_name()))
                .into_iter()
                .next()
        })
        .collect()
}

/// The "Examples:" text under the help of `command`, at `path`, if it has examples.
pub fn examples_of(command: &clap::Command, path: &str) -> Option<String> {
    let lines = lines_of(command, path);
    if lines.is_empty() {
        return None;
    }
    let lines: Vec<String> = lines.iter().map(|line| format!("  {line}")).collect();
    Some(format!("Examples:\n{}", lines.join("\n")))
}
