# pocketgate on NixOS: the global part (examples/pocketgate.toml as options).
# Each service's own module adds its host: see grafana.nix and sonarr.nix.
{ ... }:

{
  # The module from a checkout of pocketgate (adjust the path).
  imports = [ ../../nix/module.nix ];

  services.pocketgate = {
    enable = true;
    publicUrl = "https://auth.example.com";   # where browsers reach /login, /callback, /logout
    defaultPolicy = "users";                  # hosts not listed; remove to deny unknown hosts

    oidc = {
      issuer = "https://id.example.com";      # Pocket ID's APP_URL
      clientId = "pocketgate";
      # Files only: systemd hands them to the service; they never enter the Nix store.
      clientSecretFile = "/run/secrets/pocketgate-client-secret";
    };
    session = {
      secretFile = "/run/secrets/pocketgate-session-secret";   # `pocketgate gen-secret`
      cookieDomain = "example.com";           # one login for every *.example.com service
      lifetime = "12h";
      idleTimeout = "2h";                     # a session unused this long ends
    };
    assertion.enable = true;                  # X-Pocketgate-Assertion, keys at /.well-known/jwks.json

    policies = {
      admins.allowedGroups = [ "admins" ];
      users.allowedGroups = [ "admins" "users" ];
      bypass.allowedNetworks = [ "10.0.0.0/8" "192.168.0.0/16" ];
    };
    hosts."lan.example.com".policy = "bypass";

    # Caddy: the forward-auth snippet on every host above, and auth.example.com.
    caddy.enable = true;
  };
  services.caddy.enable = true;
  services.caddy.virtualHosts."lan.example.com".extraConfig = "reverse_proxy 127.0.0.1:8080";
}
