using Ambient.Cni;

// The runtime starts this process once per pod and command; keep it to the one call.
return await Plugin.RunAsync(
    args,
    CniEnvironment.FromProcess(),
    Console.OpenStandardInput(),
    Console.OpenStandardOutput(),
    Console.Error);
