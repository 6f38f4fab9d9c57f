// Command fakeprovider serves the fake OpenAI, Anthropic, Bedrock and Azure OpenAI provider
// (package test/fakeprovider) on one address. Every flag can also be given as an environment
// variable FAKEPROVIDER_<FLAG> (upper case, dashes as underscores), e.g.
// FAKEPROVIDER_OPENAI_KEY. See docs/fakeprovider.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/posthog/llm-gateway/test/fakeprovider"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], nil); err != nil {
		fmt.Fprintln(os.Stderr, "fakeprovider:", err)
		os.Exit(1)
	}
}

// listFlag collects a repeatable flag (also comma-separated).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// run serves until ctx is done; ready, when set, receives the listening address.
func run(ctx context.Context, args []string, ready func(addr string)) error {
	fs := flag.NewFlagSet("fakeprovider", flag.ContinueOnError)
	var (
		cfg         fakeprovider.Config
		deployments listFlag
		models      listFlag
	)
	listen := fs.String("listen", "127.0.0.1:8300", "address to listen on")
	scenarios := fs.String("scenarios", "", "scenario file (YAML or JSON): {default: Scenario, scenarios: {name: Scenario}}")
	fs.StringVar(&cfg.OpenAIKey, "openai-key", "", "the only OpenAI key accepted (default: any non-empty key)")
	fs.StringVar(&cfg.AnthropicKey, "anthropic-key", "", "the only Anthropic key accepted (default: any non-empty key)")
	fs.StringVar(&cfg.AzureKey, "azure-key", "", "the only Azure api-key accepted (default: any non-empty key)")
	fs.StringVar(&cfg.Bedrock.AccessKeyID, "bedrock-access-key-id", "", "AWS access key id SigV4 requests must use; with the secret, signatures are verified")
	fs.StringVar(&cfg.Bedrock.SecretAccessKey, "bedrock-secret-access-key", "", "AWS secret access key signatures are verified with")
	fs.StringVar(&cfg.Bedrock.SessionToken, "bedrock-session-token", "", "X-Amz-Security-Token SigV4 requests must carry")
	fs.StringVar(&cfg.Bedrock.Region, "bedrock-region", "", "region the SigV4 credential scope must name (default: any)")
	fs.StringVar(&cfg.Bedrock.APIKey, "bedrock-api-key", "", "the only Bedrock API key (bearer) accepted (default: any non-empty token)")
	fs.Var(&deployments, "azure-deployment", "Azure deployment=model, repeatable; when set, other deployments are 404 (default: every deployment serves "+fakeprovider.DefaultAzureModel+")")
	fs.Var(&models, "models", "models listed by GET /v1/models, comma-separated")
	record := fs.Int("record-requests", fakeprovider.DefaultRecordRequests, "requests kept for GET /_fake/requests (0 disables)")
	logLevel := fs.String("log-level", "info", "debug (one line per request), info, warn or error")
	tlsCertOut := fs.String("tls-cert-out", "", "serve HTTPS (HTTP/2 and HTTP/1.1) with a fresh self-signed certificate for 127.0.0.1 and localhost, written to this file (PEM) for clients to trust")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flagsFromEnv(fs); err != nil {
		return err
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	cfg.Models = models
	cfg.RecordRequests = *record
	if *record == 0 {
		cfg.RecordRequests = -1
	}
	if len(deployments) > 0 {
		cfg.AzureDeployments = map[string]string{}
		for _, d := range deployments {
			name, model, ok := strings.Cut(d, "=")
			if !ok || name == "" || model == "" {
				return fmt.Errorf("--azure-deployment %q: want name=model", d)
			}
			cfg.AzureDeployments[name] = model
		}
	}
	if *scenarios != "" {
		f, err := fakeprovider.LoadScenarios(*scenarios)
		if err != nil {
			return err
		}
		cfg.Default, cfg.Scenarios = f.Default, f.Scenarios
	}

	fp := fakeprovider.New(cfg)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	srv := &http.Server{Handler: fp, ReadHeaderTimeout: 10 * time.Second}
	if *tlsCertOut != "" {
		if srv.TLSConfig, err = selfSignedTLS(*tlsCertOut); err != nil {
			ln.Close()
			return err
		}
	}
	log.Info("fakeprovider listening", "addr", ln.Addr().String(), "scenarios", len(cfg.Scenarios),
		"tls", srv.TLSConfig != nil, "sigv4_verified", cfg.Bedrock.AccessKeyID != "" && cfg.Bedrock.SecretAccessKey != "")

	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			return
		}
		errc <- srv.Serve(ln)
	}()
	if ready != nil {
		ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("fakeprovider shutting down")
	fp.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// flagsFromEnv sets every flag not given on the command line from FAKEPROVIDER_<NAME>.
func flagsFromEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		env := "FAKEPROVIDER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !given[f.Name] && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s: %w", env, e)
			}
		}
	})
	return err
}
