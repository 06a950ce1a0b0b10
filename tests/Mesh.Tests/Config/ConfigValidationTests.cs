using Ambient.Mesh.Config;

namespace Ambient.Mesh.Tests.Config;

/// <summary>Each validation error names its field and line (and the loader keeps going to find the rest).</summary>
public sealed class ConfigValidationTests
{
    private static ConfigError SingleError(string yaml, string file = "bad.yaml")
    {
        ConfigLoadResult result = ConfigLoader.Parse(yaml, file);
        Assert.False(result.Ok);
        Assert.Null(result.Config);
        return Assert.Single(result.Errors);
    }

    private static void AssertError(string yaml, string field, int line, string messagePart)
    {
        ConfigError e = SingleError(yaml);
        Assert.Equal(field, e.Field);
        Assert.Equal(line, e.Line);
        Assert.Contains(messagePart, e.Message, StringComparison.Ordinal);
        Assert.Equal("bad.yaml", e.File);
        Assert.True(e.Column > 0);
    }

    private const string W = "workloads:\n- name: a\n  namespace: ns\n";

    [Fact]
    public void BadWorkloadIp() =>
        AssertError(W + "  workloadIps: [\"10.0.0.1\", \"10.0.1\"]\n", "workloads[0].workloadIps[1]", 4, "'10.0.1' is not an IP address");

    [Fact]
    public void BadCidr() => AssertError("""
        policies:
        - name: p
          namespace: ns
          scope: Global
          action: Deny
          rules: [[[{sourceIps: ["10.0.0.0/33"]}]]]
        """, "policies[0].rules[0][0][0].sourceIps[0]", 6, "invalid prefix length (0-32)");

    [Fact]
    public void ServicePortOutOfRange() => AssertError("""
        services:
        - name: s
          namespace: ns
          hostname: s.ns.svc.cluster.local
          vips: [/10.96.0.1]
          ports:
            80: 70000
        """, "services[0].ports.80", 7, "70000 is out of range (0-65535)");

    [Fact]
    public void DestinationPortZero() => AssertError("""
        policies:
        - name: p
          namespace: ns
          scope: Global
          action: Deny
          rules:
          - - - destinationPorts: [0]
        """, "policies[0].rules[0][0][0].destinationPorts[0]", 7, "out of range (1-65535)");

    [Fact]
    public void UnknownProtocolListsAllowedValues() =>
        AssertError(W + "  protocol: HTTP\n", "workloads[0].protocol", 4, "'HTTP' is not one of: TCP, HBONE, NONE");

    [Fact]
    public void UnknownScope() => AssertError("""
        policies:
        - name: p
          namespace: ns
          scope: Cluster
          action: Deny
        """, "policies[0].scope", 4, "one of: Global, Namespace, WorkloadSelector");

    [Fact]
    public void UnknownAccessLog() => AssertError("accessLog: xml\n", "accessLog", 1, "'xml' is not one of: text, json, off");

    [Fact]
    public void DuplicateUid() => AssertError("""
        workloads:
        - uid: u1
          name: a
          namespace: ns
        - uid: u1
          name: b
          namespace: ns
        """, "workloads[1].uid", 5, "duplicate workload uid 'u1' (already used by workloads[0])");

    [Fact]
    public void DuplicateIpOnSameNetwork() => AssertError("""
        workloads:
        - name: a
          namespace: ns
          workloadIps: [10.0.0.1]
        - name: b
          namespace: ns
          network: other
          workloadIps: [10.0.0.1]
        - name: c
          namespace: ns
          workloadIps: ["::ffff:10.0.0.1"]
        """, "workloads[2].workloadIps[0]", 11, "IP 10.0.0.1 on the default network is already used by workloads[0]");

    [Fact]
    public void HostNetworkWorkloadsMayShareTheNodeIp()
    {
        ConfigLoadResult result = ConfigLoader.Parse("""
            workloads:
            - {name: a, namespace: ns, workloadIps: [10.0.0.1], networkMode: HostNetwork}
            - {name: b, namespace: ns, workloadIps: [10.0.0.1], networkMode: HostNetwork}
            """, "c.yaml");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
    }

    [Fact]
    public void MalformedServiceKeyIsAnError() =>
        AssertError(W + "  services:\n    example.com: {80: 8080}\n", "workloads[0].services[\"example.com\"]", 5, "not a service key");

    [Fact]
    public void UndefinedServiceIsAWarning()
    {
        ConfigLoadResult result = ConfigLoader.Parse(W + "  services:\n    \"ns/missing.example\": {80: 8080}\n", "c.yaml");
        Assert.True(result.Ok);
        ConfigError w = Assert.Single(result.Warnings);
        Assert.Equal("workloads[0].services[\"ns/missing.example\"]", w.Field);
        Assert.Equal(5, w.Line);
        Assert.Contains("not defined", w.Message);
    }

    [Fact]
    public void MissingWorkloadName() => AssertError("workloads:\n- namespace: ns\n  uid: x\n", "workloads[0].name", 2, "required");

    [Fact]
    public void MissingNamespace() => AssertError("workloads:\n- name: a\n", "workloads[0].namespace", 2, "required");

    [Fact]
    public void MissingServiceHostname() => AssertError("""
        services:
        - name: s
          namespace: ns
        """, "services[0].hostname", 2, "required");

    [Fact]
    public void MissingPolicyAction() => AssertError("""
        policies:
        - name: p
          namespace: ns
          scope: Global
        """, "policies[0].action", 2, "required: Allow or Deny");

    [Fact]
    public void CaCertWithoutKey() => AssertError("ca:\n  certFile: /etc/ca.pem\n", "ca.keyFile", 2, "must be given together");

    [Fact]
    public void CaFileMissing()
    {
        ConfigLoadResult result = ConfigLoader.Parse("ca:\n  certFile: /nonexistent/ca.pem\n  keyFile: /nonexistent/ca.key\n", "c.yaml");
        Assert.Equal(2, result.Errors.Length);
        Assert.Equal(("ca.certFile", 2), (result.Errors[0].Field, result.Errors[0].Line));
        Assert.Equal(("ca.keyFile", 3), (result.Errors[1].Field, result.Errors[1].Line));
    }

    [Fact]
    public void YamlSyntaxErrorHasItsLine()
    {
        ConfigError e = SingleError("workloads:\n- name: a\n  namespace: [unclosed\n");
        Assert.Contains("YAML syntax error", e.Message);
        Assert.True(e.Line >= 3, e.ToString());
    }

    [Fact]
    public void DuplicateYamlKeyIsASyntaxError()
    {
        ConfigError e = SingleError("mode: shared\nmode: inpod\n");
        Assert.Equal(2, e.Line);
        Assert.Contains("Duplicate key", e.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void UnknownTopLevelKeySuggestsTheKnownOne() =>
        AssertError("workload:\n- name: a\n", "workload", 1, "did you mean 'workloads'?");

    [Fact]
    public void UnknownTopLevelKeyFarFromAnyIsStillAnError() =>
        AssertError("capture: {}\n", "capture", 1, "unknown field 'capture'; expected one of:");

    [Fact]
    public void MisspeltWorkloadFieldIsAnError() =>
        AssertError(W + "  serviceAcount: sa\n", "workloads[0].serviceAcount", 4, "did you mean 'serviceAccount'?");

    [Fact]
    public void UnknownWorkloadFieldFromANewerIstioIsAWarning()
    {
        ConfigLoadResult result = ConfigLoader.Parse(W + "  someFutureIstioField: {a: 1}\n", "c.yaml");
        Assert.True(result.Ok);
        ConfigError w = Assert.Single(result.Warnings);
        Assert.Equal(("workloads[0].someFutureIstioField", 4), (w.Field, w.Line));
    }

    [Fact]
    public void UnknownMatchFieldIsAnError() => AssertError("""
        policies:
        - name: p
          namespace: ns
          scope: Global
          action: Allow
          rules: [[[{ipBlocks: [10.0.0.0/8]}]]]
        """, "policies[0].rules[0][0][0].ipBlocks", 6, "unknown field 'ipBlocks'");

    [Fact]
    public void BadStringMatch() => AssertError("""
        policies:
        - name: p
          namespace: ns
          scope: Global
          action: Allow
          rules: [[[{principals: [{Regex: "a.*"}]}]]]
        """, "policies[0].rules[0][0][0].principals[0]", 6, "unknown string match 'Regex'");

    [Fact]
    public void BadListenerAddress() =>
        AssertError("listeners:\n  hbone: \"::1:15008\"\n", "listeners.hbone", 2, "write IPv6 as \"[::]:15008\"");

    [Fact]
    public void BadDuration() => AssertError("certificateLifetime: 24\n", "certificateLifetime", 1, "not a duration");

    [Fact]
    public void BadVip() => AssertError("""
        services:
        - name: s
          namespace: ns
          hostname: s.example
          vips: ["net/not-an-ip"]
        """, "services[0].vips[0]", 5, "not a network address");

    [Fact]
    public void DuplicateVip() => AssertError("""
        services:
        - {name: a, namespace: ns, hostname: a.example, vips: [/10.96.0.1]}
        - {name: b, namespace: ns, hostname: b.example, vips: [/10.96.0.1]}
        """, "services[1].vips[0]", 3, "already used by services[0]");

    [Fact]
    public void DuplicatePolicy() => AssertError("""
        policies:
        - {name: p, namespace: ns, scope: Global, action: Allow}
        - {name: p, namespace: ns, scope: Global, action: Deny}
        """, "policies[1].name", 3, "duplicate policy 'ns/p'");

    /// <summary>Issue 13: two listeners on one address would share a port (or fail at start-up); --validate says so.</summary>
    [Fact]
    public void TwoListenersOnOneAddress() => AssertError("""
        listeners:
          outbound: 127.0.0.1:15001
          socks5: 127.0.0.1:15001
        """, "listeners.socks5", 3, "127.0.0.1:15001 overlaps listeners.outbound (127.0.0.1:15001)");

    [Fact]
    public void AWildcardListenerCoversEveryAddressOnItsPort() => AssertError("""
        admin: 127.0.0.1:15020
        """, "admin", 1, "127.0.0.1:15020 overlaps metrics (0.0.0.0:15020)");

    [Fact]
    public void ADualModeIpv6WildcardCoversIpv4() => AssertError("""
        readiness: "[::]:15080"
        """, "readiness", 1, "overlaps listeners.socks5 (127.0.0.1:15080)");

    [Theory]
    [InlineData("listeners:\n  socks5: 127.0.0.2:15001\n")]   // another address, same port: fine
    [InlineData("listeners:\n  socks5: 127.0.0.1:0\n  outbound: 127.0.0.1:0\n")] // port 0: each gets its own
    [InlineData("mode: inpod\nlisteners:\n  inbound: 127.0.0.1:15080\n")] // in-pod: the proxy listeners are in the pods
    public void ListenersThatDoNotOverlap(string yaml)
    {
        ConfigLoadResult result = ConfigLoader.Parse(yaml, "ok.yaml");
        Assert.True(result.Ok, string.Join("\n", result.Errors));
    }

    [Fact]
    public void HboneIdleTimeoutHasAFloor() =>
        AssertError("hboneIdleTimeout: 100ms\n", "hboneIdleTimeout", 1, "must be at least 1s");

    [Fact]
    public void WrongNodeKind() => AssertError("workloads: {a: 1}\n", "workloads", 1, "expected a list");

    [Fact]
    public void EveryErrorIsReportedNotJustTheFirst()
    {
        ConfigLoadResult result = ConfigLoader.Parse("""
            mode: sidecar
            accessLog: xml
            workloads:
            - name: a
              workloadIps: [bad]
            - name: b
              namespace: ns
              protocol: QUIC
            """, "many.yaml");
        Assert.False(result.Ok);
        Assert.Equal(
            ["mode", "accessLog", "workloads[0].workloadIps[0]", "workloads[0].namespace", "workloads[1].protocol"],
            result.Errors.Select(e => e.Field));
        Assert.Equal([1, 2, 5, 4, 8], result.Errors.Select(e => e.Line));
    }
}
