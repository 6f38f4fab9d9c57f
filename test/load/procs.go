package load

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat (100 on every Linux
// architecture Go supports).
const clockTicks = 100

// Pinning says which CPU each process runs on; empty strings leave a process unpinned.
type Pinning struct {
	Gateway string // taskset CPU list for gateways
	Others  string // the fake provider, redis-server and the load generator itself
}

// Describe is the pinning in words, for the report.
func (p Pinning) Describe() string {
	if p.Gateway == "" {
		return "not pinned"
	}
	return fmt.Sprintf("gateway on CPU %s (taskset -c %s); fake provider, redis-server and the load generator on CPU %s",
		p.Gateway, p.Gateway, p.Others)
}

// ChoosePinning pins the gateway to CPU 0 and everything else to CPU 1 when there are at
// least two CPUs and taskset is installed; otherwise nothing is pinned.
func ChoosePinning(want bool, cpus int) Pinning {
	if !want || cpus < 2 {
		return Pinning{}
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return Pinning{}
	}
	return Pinning{Gateway: "0", Others: "1"}
}

// PinSelf moves every thread of this process to the CPU list (threads started later inherit it).
func PinSelf(cpus string) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s: %w: %s", cpus, err, out)
	}
	return nil
}

// Proc is a child process of the load tool (a gateway, the fake provider, redis-server).
type Proc struct {
	Name string
	Log  string // its stdout and stderr
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// StartProc starts bin with args, on the CPU list cpu when set, output to dir/name.log.
func StartProc(dir, name, cpu string, env []string, bin string, args ...string) (*Proc, error) {
	p := &Proc{Name: name, Log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	logf, err := os.Create(p.Log)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	defer logf.Close()
	if cpu != "" {
		args = append([]string{"-c", cpu, bin}, args...)
		bin = "taskset" // taskset execs bin: same pid
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM and waits up to grace, then kills. The log tail is in the error when the
// process had already died.
func (p *Proc) Stop(grace time.Duration) error {
	if dead, err := p.Exited(); dead {
		return fmt.Errorf("%s had exited: %v: %s", p.Name, err, p.tail())
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

func (p *Proc) tail() string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// CPU is the user + system CPU time the process has used (all threads, 10 ms resolution).
func (p *Proc) CPU() (time.Duration, error) {
	d, err := processCPU(p.Pid())
	if err != nil {
		return 0, fmt.Errorf("read cpu time of %s: %w", p.Name, err)
	}
	return d, nil
}

// processCPU reads utime + stime of a process from /proc/<pid>/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name (which may contain spaces) start at state (field 3).
	rest := b[bytes.LastIndexByte(b, ')')+2:]
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// CoresBusy is the CPU time of each process over a window divided by its wall time (1 = one
// core saturated): where the time of a measurement went.
type CoresBusy struct {
	Gateway   float64 `json:"gateway"`
	Fake      float64 `json:"fakeProvider"`
	Generator float64 `json:"generator"` // this process
	Redis     float64 `json:"redis,omitempty"`
}

// cpuMeter samples the CPU time of the gateway, the fake provider, this process and (when
// set) redis-server at start and at stop.
type cpuMeter struct {
	procs [4]*Proc // gateway, fake, -, redis
	start time.Time
	cpu0  [4]time.Duration
}

func startCPUMeter(gw, fake, redis *Proc) (*cpuMeter, error) {
	m := &cpuMeter{procs: [4]*Proc{gw, fake, nil, redis}}
	var err error
	m.cpu0, err = m.read()
	m.start = time.Now()
	return m, err
}

func (m *cpuMeter) read() ([4]time.Duration, error) {
	var out [4]time.Duration
	for i, p := range m.procs {
		var err error
		switch {
		case i == 2:
			out[i], err = processCPU(os.Getpid())
		case p != nil:
			out[i], err = p.CPU()
		}
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// stop returns the cores each process kept busy since the start.
func (m *cpuMeter) stop() (CoresBusy, error) {
	cpu1, err := m.read()
	if err != nil {
		return CoresBusy{}, err
	}
	wall := time.Since(m.start).Seconds()
	busy := func(i int) float64 { return round3((cpu1[i] - m.cpu0[i]).Seconds() / wall) }
	return CoresBusy{Gateway: busy(0), Fake: busy(1), Generator: busy(2), Redis: busy(3)}, nil
}

// Status reads a kB field of /proc/<pid>/status (VmRSS, VmHWM, ...) in bytes.
func (p *Proc) Status(field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("read %s of %s: %w", field, p.Name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s of %s: %w", field, p.Name, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, p.Pid())
}

// OpenFiles counts the process's file descriptors.
func (p *Proc) OpenFiles() (int, error) {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("list fds of %s: %w", p.Name, err)
	}
	return len(es), nil
}

// MaxOpenFiles is the process's soft RLIMIT_NOFILE.
func (p *Proc) MaxOpenFiles() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.Pid()))
	if err != nil {
		return 0, fmt.Errorf("read limits of %s: %w", p.Name, err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no open files limit for %s", p.Name)
}

// RaiseFileLimit raises this process's soft RLIMIT_NOFILE to its hard limit, which the child
// processes then inherit (Go raises its own soft limit but gives children the original one,
// unless the program sets it itself). It returns the new limit.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("setrlimit nofile %d: %w", l.Max, err)
	}
	return l.Cur, nil
}

// FreeAddr is a free 127.0.0.1 port.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, the process dies, or timeout passes.
func waitHTTP(ctx context.Context, c *http.Client, url string, p *Proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if dead, werr := p.Exited(); dead {
			return fmt.Errorf("%s exited (%v): %s", p.Name, werr, p.tail())
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s not ready at %s after %s: %w", p.Name, url, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
