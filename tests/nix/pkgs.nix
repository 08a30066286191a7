# A stand-in for the few parts of `pkgs` services.pocketgate uses. Files are
# plain records ({ name, text, outPath }) the test writes to disk itself, and
# runCommand keeps its script, so the test runs the very build-time check the
# module writes, with the pocketgate it built.
{ store, pocketgate }:

rec {
  writeText = name: text: { inherit name text; outPath = "${store}/${name}"; };
  runCommand = name: env: script: env // {
    inherit name script;
    outPath = "${store}/checked-${name}";
  };
  coreutils = "/stand-in/coreutils";
  # what services.pocketgate.package is set to in the tests: a directory with bin/pocketgate
  pocketgateStandIn = { name = "pocketgate"; outPath = pocketgate; type = "derivation"; };
  callPackage = throw "stand-in pkgs: callPackage is not available (set services.pocketgate.package)";
}
