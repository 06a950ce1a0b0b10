using Ambient.NodeBench;

// The node benchmark's C# half: small, predictable load tools that run inside the pods' network namespaces,
// and the report writer. ./node-bench (bash) owns namespaces and processes; this program owns measurement.
return args.Length == 0 ? Usage() : args[0] switch
{
    "server" => await HttpServer.RunAsync(Args.Parse(args)),
    "load" => await OpenLoopClient.RunAsync(Args.Parse(args)),
    "connrate" => await ConnectionRate.RunAsync(Args.Parse(args)),
    "idle" => await IdleConnections.RunAsync(Args.Parse(args)),
    "report" => Report.Run(Args.Parse(args)),
    "report-l7" => L7Report.Run(Args.Parse(args)),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("""
        usage: nodebench <command> [--key value]...
          server   --port P [--size 1024]                           HTTP/1.1 server, 1 KB answers
          load     --target IP:PORT --rps 1000 --seconds S --warmup W --connections C --out FILE
                                                                    open-loop constant-rate client (HdrHistogram)
          connrate --target IP:PORT --seconds S --workers N --out FILE
                                                                    new connections as fast as possible
          idle     --target IP:PORT --count N --ready FILE          open N connections, one request each, hold them
          report   --raw RAW.jsonl --meta META.json --out-dir DIR   medians, JSON, Markdown, PNG plots
          report-l7 --raw RAW.jsonl --meta META.json --out-dir DIR  the L7 scenario's JSON and Markdown
        """);
    return 2;
}
