# Traefik instead of Caddy: import this module too (and leave out the
# services.caddy lines of the others). The `pocketgate` middleware goes on
# every router whose rule names a host of services.pocketgate.hosts (or on
# those in services.pocketgate.traefik.routers); pocketgate's own router for
# publicUrl is added.
{ ... }:

let
  domain = "example.com";
  router = host: service: {
    rule = "Host(`${host}.${domain}`)";
    inherit service;
    entryPoints = [ "websecure" ];
    tls.certResolver = "letsencrypt";
  };
  backend = url: { loadBalancer.servers = [ { inherit url; } ]; };
in
{
  services.pocketgate.traefik = {
    enable = true;
    entryPoints = [ "websecure" ];            # pocketgate's router, and the alias-header setting
  };
  services.traefik = {
    enable = true;
    staticConfigOptions = {
      entryPoints.websecure = {
        address = ":443";
        http.tls.certResolver = "letsencrypt";
      };
      certificatesResolvers.letsencrypt.acme = {
        email = "admin@${domain}";
        storage = "/var/lib/traefik/acme.json";
        tlsChallenge = { };
      };
    };
    dynamicConfigOptions.http = {
      routers.grafana = router "grafana" "grafana";
      routers.sonarr = router "sonarr" "sonarr";
      routers.lan = router "lan" "lan";
      # pocketgate's router needs its certificate too
      routers.pocketgate.tls.certResolver = "letsencrypt";
      services.grafana = backend "http://127.0.0.1:3000";
      services.sonarr = backend "http://127.0.0.1:8989";
      services.lan = backend "http://127.0.0.1:8080";
    };
  };
}
