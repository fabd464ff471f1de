// Command davkv is a distributed key-value store for large values: one master keeps an
// index in LevelDB and places each value, as a plain file, on several nginx WebDAV
// volumes. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"davkv/internal/layout"
	"davkv/internal/s3proto"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks errors in how davkv was called; they exit with status 2.
var errUsage = errors.New("usage")

// command is one subcommand. setup builds its own FlagSet bound to a fresh config, and
// returns what runs the command once the flags are parsed.
type command struct {
	name    string
	summary string
	setup   func(stderr io.Writer) (*flag.FlagSet, func(ctx context.Context, stdout io.Writer, log *slog.Logger) error)
}

func commands() []command {
	return []command{
		{"server", "run the master", serverCommand},
		{"rebuild", "recreate the index from what the volumes hold", rebuildCommand},
		{"rebalance", "move values to where the volume list places them", rebalanceCommand},
		{"thrash", "write, read and delete keys like a user, and measure", thrashCommand},
		{"verify", "check the index against the volumes, and repair with -fix", verifyCommand},
		{"migrate", "copy the index to another backend (LevelDB, etcd, PostgreSQL)", migrateCommand},
		{"keys", "list, add, revoke the access keys of a running master, and set their policies", keysCommand},
		{"import-mkv", "adopt a minikeyvalue cluster in place: rename its files, write davkv's index", importMKVCommand},
	}
}

// run is davkv without the process around it: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	i := findCommand(args, cmds, stderr)
	if i < 0 {
		usage(stderr, cmds)
		return 2
	}
	var cmd *command
	for k := range cmds {
		if cmds[k].name == args[i] {
			cmd = &cmds[k]
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "davkv: unknown command %q\n", args[i])
		usage(stderr, cmds)
		return 2
	}
	fs, action := cmd.setup(stderr)
	rest := append(append([]string{}, args[:i]...), args[i+1:]...)
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // flag has printed the error and the usage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "davkv: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := action(ctx, stdout, log); err != nil {
		fmt.Fprintf(stderr, "davkv: %v\n", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// findCommand returns the index in args of the subcommand, which may stand before,
// between or after the flags (as minikeyvalue allows), or -1 if there is none. To tell a
// flag's value from the subcommand it must know which flags take no value; it asks
// every command's FlagSet.
func findCommand(args []string, cmds []command, stderr io.Writer) int {
	var sets []*flag.FlagSet
	for _, c := range cmds {
		fs, _ := c.setup(stderr)
		sets = append(sets, fs)
	}
	isBool := func(name string) bool {
		for _, fs := range sets {
			if f := fs.Lookup(name); f != nil {
				b, ok := f.Value.(interface{ IsBoolFlag() bool })
				return ok && b.IsBoolFlag()
			}
		}
		return true // unknown: the command's own parse will complain
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return -1
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			return i
		}
		name := strings.TrimLeft(a, "-")
		if !strings.Contains(name, "=") && !isBool(name) {
			i++ // skip the flag's value
		}
	}
	return -1
}

func usage(w io.Writer, cmds []command) {
	fmt.Fprintln(w, "usage: davkv [flags] COMMAND [flags]")
	fmt.Fprintln(w, "commands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "run 'davkv COMMAND -h' for a command's flags")
}

// listFlag is a comma-separated list flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = nil
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("davkv "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func serverCommand(stderr io.Writer) (*flag.FlagSet, func(context.Context, io.Writer, *slog.Logger) error) {
	fs := newFlagSet("server", stderr)
	cfg := ServerConfig{}
	fs.IntVar(&cfg.Port, "port", 3000, "port to listen on")
	clusterFlags(fs, &cfg.ClusterConfig)
	fs.DurationVar(&cfg.Grace, "grace", 30*time.Second, "how long old replicas (moved by REBALANCE, replaced by an S3 overwrite) are kept, for redirects already sent")
	fs.BoolVar(&cfg.Protect, "protect", false, "refuse DELETE of a key that was not UNLINKed first")
	fs.StringVar(&cfg.Zone, "zone", "", "the zone this master is in: GETs go to a replica in it when one is up")
	fs.StringVar(&cfg.Fallback, "fallback", "", "host:port to redirect GETs of unknown keys to")
	fs.IntVar(&cfg.MinReplicas, "minreplicas", 0, "with fewer volumes up than -replicas, accept a PUT once this many copies are stored (default: -replicas)")
	fs.BoolVar(&cfg.MD5Sum, "md5sum", true, "compute and serve each value's MD5")
	volTimeoutFlag(fs, &cfg.VolTimeout)
	fs.BoolVar(&cfg.Sync, "sync", false, "make every index write wait for the disk (survives power loss)")
	fs.BoolVar(&cfg.Verbose, "v", false, "log every request")
	s3keys := fs.String("s3keys", "", "ACCESS:SECRET[,ACCESS:SECRET...] that S3 requests must be signed with (default: $DAVKV_S3_KEYS; none: signatures are not checked)")
	fs.StringVar(&cfg.S3Domain, "s3domain", "", "the master's host name for virtual-host S3 requests (BUCKET.DOMAIN)")
	fs.DurationVar(&cfg.UploadGrace, "upload-grace", 7*24*time.Hour, "how old an S3 multipart upload may grow before it is abandoned and removed")
	fs.DurationVar(&cfg.LifecycleDay, "lifecycle-day", 24*time.Hour, "how long a day of the buckets' lifecycle rules lasts (shorter only for tests)")
	metricsOn := fs.Bool("metrics", true, "serve GET /metrics (Prometheus) and count requests for it")
	fs.BoolVar(&cfg.Auth, "auth", false, "make native requests need credentials too (curl -u ID:SECRET, or Authorization: Bearer ID:SECRET), but GET and HEAD of what a bucket's policy lets anyone read; needs -s3keys")
	fs.IntVar(&cfg.AuthBurst, "auth-burst", 20, "failed authentications a client address may make at once")
	fs.Float64Var(&cfg.AuthRate, "auth-rate", 1, "failed authentications a client address earns back each second, past -auth-burst")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM file of the master's TLS certificate (with its chain): serve HTTPS, HTTP/1.1 and HTTP/2; SIGHUP reads it again")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM file of the TLS certificate's private key")
	fs.DurationVar(&cfg.SignReads, "signreads", 0, "sign every redirect to a volume for this long (e.g. 1h), for volumes started with DAVKV_SIGNREADS=1; needs DAVKV_SECRET (default: plain links)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	return fs, func(ctx context.Context, _ io.Writer, log *slog.Logger) error {
		if *cpuprofile != "" {
			stop, err := startCPUProfile(*cpuprofile)
			if err != nil {
				return err
			}
			defer stop()
		}
		keys := *s3keys
		if keys == "" {
			keys = os.Getenv("DAVKV_S3_KEYS")
		}
		var err error
		if cfg.S3Keys, err = s3proto.ParseKeys(keys); err != nil {
			return fmt.Errorf("-s3keys: %w", err)
		}
		if cfg.Secret, err = volumeSecret(); err != nil {
			return err
		}
		cfg.NoMetrics = !*metricsOn
		return runServer(ctx, cfg, log)
	}
}

func keysCommand(stderr io.Writer) (*flag.FlagSet, func(context.Context, io.Writer, *slog.Logger) error) {
	fs := newFlagSet("keys", stderr)
	cfg := KeysConfig{}
	fs.StringVar(&cfg.Master, "master", "localhost:3000", "the master, host:port")
	fs.StringVar(&cfg.Add, "add", "", "add a key with this ID (3 to 128 letters, digits and -._) and print ID:SECRET")
	fs.StringVar(&cfg.Remove, "remove", "", "revoke the key with this ID")
	fs.StringVar(&cfg.SetPolicy, "set-policy", "", "replace the policy of the key with this ID")
	fs.StringVar(&cfg.Policy, "policy", "", "the policy of -add or -set-policy: readonly, readwrite, or a JSON file (see the README's Access control)")
	fs.StringVar(&cfg.Note, "note", "", "what the key added is for")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "bound on each request to the master")
	return fs, func(ctx context.Context, stdout io.Writer, _ *slog.Logger) error {
		var err error
		if cfg.MasterKey, err = masterKey(); err != nil {
			return err
		}
		return runKeys(ctx, cfg, stdout)
	}
}

// masterKey returns the key the commands send to a master started with -auth:
// $DAVKV_KEY (ID:SECRET), or else the first of $DAVKV_S3_KEYS, or "" for none. It
// comes from the environment, never a flag, so that it does not show in the process
// list.
func masterKey() (string, error) {
	key := os.Getenv("DAVKV_KEY")
	if key == "" {
		first, _, _ := strings.Cut(os.Getenv("DAVKV_S3_KEYS"), ",")
		key = strings.TrimSpace(first)
	}
	if id, secret, ok := strings.Cut(key, ":"); key != "" && (!ok || id == "" || secret == "") {
		return "", errors.New("DAVKV_KEY (or DAVKV_S3_KEYS) must be ID:SECRET")
	}
	return key, nil
}

// volumeSecret returns the volumes' shared secret: $DAVKV_SECRET, or the contents of
// the file $DAVKV_SECRET_FILE names (without its trailing newline), as volume.sh reads
// them; empty if neither is set. It comes from the environment, never a flag, so that
// it does not show in the process list.
func volumeSecret() (string, error) {
	secret := os.Getenv("DAVKV_SECRET")
	if path := os.Getenv("DAVKV_SECRET_FILE"); secret == "" && path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("DAVKV_SECRET_FILE: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	return secret, CheckSecret(secret)
}

// startCPUProfile profiles the process into path until the returned stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// clusterFlags are the flags of every command that works on the volumes and the index.
func clusterFlags(fs *flag.FlagSet, c *ClusterConfig) {
	fs.Var(volumesFlag{&c.Volumes, &c.Zones, &c.Weights}, "volumes", "comma-separated volumes, [ZONE/]HOST:PORT[*WEIGHT] each")
	fs.StringVar(&c.DB, "db", "", "the index: a LevelDB directory, etcd://HOST:PORT[,HOST:PORT...]/PREFIX[?lease=TTL], or postgres://USER@HOST:PORT[,HOST:PORT]/DB[?schema=NAME&lease=TTL&...]")
	fs.BoolVar(&c.VolumeTLS, "volume-tls", false, "the volumes speak HTTPS (volume.sh with DAVKV_TLS_CERT): connect with TLS, trusting the system's certificates or $SSL_CERT_FILE's, and redirect clients to https")
	fs.IntVar(&c.Replicas, "replicas", 3, "volumes holding each value")
	fs.IntVar(&c.Subvolumes, "subvolumes", 10, "sv directories per volume")
	fs.Func("placement", "how keys are placed on volumes: davkv (rendezvous hashing over zones and hosts, the default) or mkv (minikeyvalue's, for a cluster adopted with import-mkv)", func(s string) error {
		if s == "davkv" {
			s = ""
		}
		c.Ranking = layout.Ranking(s)
		return nil
	})
}

func migrateCommand(stderr io.Writer) (*flag.FlagSet, func(context.Context, io.Writer, *slog.Logger) error) {
	fs := newFlagSet("migrate", stderr)
	cfg := MigrateConfig{}
	fs.StringVar(&cfg.DB, "db", "", "the index to copy (no master may be using it)")
	fs.StringVar(&cfg.To, "to", "", "the index to copy into: a LevelDB directory, etcd://HOST:PORT[,HOST:PORT...]/PREFIX or postgres://USER@HOST:PORT/DB[?schema=NAME]")
	fs.BoolVar(&cfg.Force, "force", false, "replace an index that already exists at -to")
	fs.IntVar(&cfg.Workers, "workers", 16, "records written at once")
	fs.DurationVar(&cfg.Progress, "progress", 5*time.Second, "how often to log progress")
	return fs, func(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
		return runMigrate(ctx, cfg, stdout, log)
	}
}

func importMKVCommand(stderr io.Writer) (*flag.FlagSet, func(context.Context, io.Writer, *slog.Logger) error) {
	fs := newFlagSet("import-mkv", stderr)
	cfg := ImportConfig{}
	clusterFlags(fs, &cfg.ClusterConfig)
	fs.Lookup("db").Usage = "minikeyvalue's index (its -db), only read: no minikeyvalue master may be running on it"
	fs.StringVar(&cfg.To, "to", "", "davkv's index to write: a LevelDB directory, etcd://HOST:PORT[,HOST:PORT...]/PREFIX or postgres://USER@HOST:PORT/DB[?schema=NAME]; one an interrupted run left is carried on")
	fs.IntVar(&cfg.Workers, "workers", 16, "keys moved at once")
	fs.BoolVar(&cfg.MD5, "md5", false, "read the value of every key whose record has no MD5, to record it")
	fs.BoolVar(&cfg.DryRun, "dry-run", false, "only look: move and write nothing, and say what would be adopted")
	fs.DurationVar(&cfg.Progress, "progress", 5*time.Second, "how often to log progress")
	fs.DurationVar(&cfg.VolTimeout, "voltimeout", time.Minute, "bound on a volume's answer; a MOVE across disks copies the file before it answers")
	return fs, func(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
		var err error
		if cfg.Secret, err = volumeSecret(); err != nil {
			return err
		}
		return runImportMKV(ctx, cfg, stdout, log)
	}
}

func volTimeoutFlag(fs *flag.FlagSet, d *time.Duration) {
	fs.DurationVar(d, "voltimeout", time.Second, "bound on connecting to a volume and waiting for its answer")
}

func rebuildCommand(stderr io.Writer) (*flag.FlagSet, func(context.Context, io.Writer, *slog.Logger) error) {
	fs := newFlagSet("rebuild", stderr)
	cfg := RebuildConfig{}
	clusterFlags(fs, &cfg.ClusterConfig)
	fs.IntVar(&cfg.Workers, "workers", 16, "directory listings (and value reads with -md5) at once")
	fs.BoolVar(&cfg.MD5, "md5", false, "read every value and record its MD5")
	fs.BoolVar(&cfg.Force, "force", false, "replace an index that already exists at -db")
	fs.BoolVar(&cfg.MKV, "mkv", false, "also adopt minikeyvalue's files, renaming them in place to davkv's layout (for a cluster whose minikeyvalue index is lost; else use import-mkv)")
	volTimeoutFlag(fs, &cfg.VolTimeout)
	return fs, func(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
		var err error
		if cfg.Secret, err = volumeSecret(); err != nil {
			return err
		}
		return runRebuild(ctx, cfg, stdout, log)
	}
}

func rebalanceCommand(stderr io.Writer) (*flag.FlagSet, func(context.Context, io.Writer, *slog.Logger) error) {
	fs := newFlagSet("rebalance", stderr)
	cfg := RebalanceConfig{}
	clusterFlags(fs, &cfg.ClusterConfig)
	fs.StringVar(&cfg.Master, "master", "", "a running master (host:port) to rebalance online, instead of -volumes and -db")
	fs.IntVar(&cfg.Workers, "workers", 8, "keys moved at once")
	fs.BoolVar(&cfg.DryRun, "dry-run", false, "only print what would move")
	volTimeoutFlag(fs, &cfg.VolTimeout)
	return fs, func(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
		var err error
		if cfg.Secret, err = volumeSecret(); err != nil {
			return err
		}
		if cfg.MasterKey, err = masterKey(); err != nil {
			return err
		}
		return runRebalance(ctx, cfg, stdout, log)
	}
}

func thrashCommand(stderr io.Writer) (*flag.FlagSet, func(context.Context, io.Writer, *slog.Logger) error) {
	fs := newFlagSet("thrash", stderr)
	cfg := ThrashConfig{Ops: slices.Clone(thrashOps), Size: 1024}
	fs.StringVar(&cfg.Master, "master", "localhost:3000", "the master, host:port")
	fs.BoolVar(&cfg.Direct, "direct", false, "work straight against -volumes, with no master: the physical limit")
	fs.BoolVar(&cfg.S3, "s3", false, "speak S3 to the master (PutObject, GetObject, DeleteObject, unsigned: a master without -s3keys), in the bucket the prefix begins with")
	fs.Var(volumesFlag{&cfg.Volumes, &cfg.Zones, &cfg.Weights}, "volumes", "with -direct: comma-separated volumes, [ZONE/]HOST:PORT[*WEIGHT] each")
	fs.IntVar(&cfg.Replicas, "replicas", 3, "with -direct: volumes holding each value")
	fs.IntVar(&cfg.Subvolumes, "subvolumes", 10, "with -direct: sv directories per volume")
	fs.IntVar(&cfg.Count, "count", 10000, "keys")
	fs.IntVar(&cfg.Workers, "workers", 16, "keys worked on at once")
	fs.Var((*sizeFlag)(&cfg.Size), "size", "value size in bytes (4k, 1M, ...)")
	fs.StringVar(&cfg.Prefix, "prefix", "", "key prefix (default /thrash/<random>); give the same to -ops get what -ops put wrote")
	fs.Var((*listFlag)(&cfg.Ops), "ops", "operations per key, in order: put,get,delete or a part")
	volTimeoutFlag(fs, &cfg.VolTimeout)
	return fs, func(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
		if cfg.Prefix == "" {
			cfg.Prefix = defaultThrashPrefix()
		}
		var err error
		if cfg.Secret, err = volumeSecret(); err != nil {
			return err
		}
		if cfg.MasterKey, err = masterKey(); err != nil {
			return err
		}
		return runThrash(ctx, cfg, stdout, log)
	}
}

func verifyCommand(stderr io.Writer) (*flag.FlagSet, func(context.Context, io.Writer, *slog.Logger) error) {
	fs := newFlagSet("verify", stderr)
	cfg := VerifyConfig{}
	clusterFlags(fs, &cfg.ClusterConfig)
	fs.StringVar(&cfg.Master, "master", "", "a running master (host:port) to verify through, online, instead of -volumes and -db")
	fs.BoolVar(&cfg.Deep, "deep", false, "read every replica and check its size and MD5")
	fs.BoolVar(&cfg.Fix, "fix", false, "repair what can be repaired")
	fs.DurationVar(&cfg.Grace, "grace", time.Hour, "leave orphans and unfinished writes younger than this alone (they may be in flight)")
	fs.DurationVar(&cfg.UploadGrace, "upload-grace", 7*24*time.Hour, "report S3 multipart uploads older than this as abandoned (and with -fix remove them)")
	fs.IntVar(&cfg.Workers, "workers", 16, "keys checked and directories listed at once")
	volTimeoutFlag(fs, &cfg.VolTimeout)
	return fs, func(ctx context.Context, stdout io.Writer, log *slog.Logger) error {
		var err error
		if cfg.Secret, err = volumeSecret(); err != nil {
			return err
		}
		if cfg.MasterKey, err = masterKey(); err != nil {
			return err
		}
		return runVerify(ctx, cfg, stdout, log)
	}
}
