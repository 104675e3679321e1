// Command poolload keeps clients busy through the pooler pods of some ConnectionPools and samples
// what the PostgreSQL server sees from them, for the chaos test (tests/cluster/chaos_test.sh).
//
// Each client picks a ready pod of its pool (listed from the API server), logs in with the
// password currently in the pool's Secret, runs short queries, and reconnects to another pod now
// and then or after any error: pods come and go under it. A sampler counts the server's backends
// of the pooled role in pg_stat_activity every 100 ms and records the peak. When the stop file
// appears it prints one line:
//
//	peak=P usable=U samples=S over=N queries=Q errors=E
//
// and exits 1 if any sample exceeded usable.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "github.com/lib/pq"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

type podPicker struct {
	client    kubernetes.Interface
	namespace string
	mu        sync.Mutex
	ips       map[string][]string // pool -> ready pod IPs
	password  string
}

func (p *podPicker) refresh(ctx context.Context, pools []string, secret, key string) {
	for ctx.Err() == nil {
		ips := map[string][]string{}
		for _, pool := range pools {
			list, err := p.client.CoreV1().Pods(p.namespace).List(ctx, metav1.ListOptions{
				LabelSelector: "app.kubernetes.io/instance=" + pool})
			if err != nil {
				continue
			}
			for _, pod := range list.Items {
				if pod.DeletionTimestamp == nil && pod.Status.PodIP != "" && ready(&pod) {
					ips[pool] = append(ips[pool], pod.Status.PodIP)
				}
			}
		}
		password := ""
		if s, err := p.client.CoreV1().Secrets(p.namespace).Get(ctx, secret, metav1.GetOptions{}); err == nil {
			password = string(s.Data[key])
		}
		p.mu.Lock()
		p.ips = ips
		if password != "" {
			p.password = password
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func ready(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func (p *podPicker) pick(pool string) (string, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ips := p.ips[pool]
	if len(ips) == 0 {
		return "", ""
	}
	return ips[rand.Intn(len(ips))], p.password
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "admin kubeconfig of the test cluster")
	namespace := flag.String("namespace", "default", "namespace of the pools")
	pools := flag.String("pools", "", "comma-separated ConnectionPool names")
	perPool := flag.Int("clients-per-pool", 100, "clients through each pool")
	port := flag.Int("port", 6432, "pooler port")
	user := flag.String("user", "app", "role the clients log in as (and the sampler counts)")
	dbname := flag.String("dbname", "app", "database")
	secret := flag.String("secret", "app-db", "Secret holding the role's password")
	sampler := flag.String("sampler-dsn", "", "superuser DSN for pg_stat_activity (the password from PGPASSWORD)")
	usable := flag.Int("usable", 0, "the server's usable budget")
	stopFile := flag.String("stop-file", "", "stop when this file exists")
	flag.Parse()

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		log.Fatal(err)
	}
	config.QPS, config.Burst = 50, 100
	client := kubernetes.NewForConfigOrDie(config)
	ctx, cancel := context.WithCancel(context.Background())
	picker := &podPicker{client: client, namespace: *namespace, ips: map[string][]string{}}
	names := strings.Split(*pools, ",")
	go picker.refresh(ctx, names, *secret, "password")

	var queries, failures atomic.Int64
	var wg sync.WaitGroup
	for _, pool := range names {
		for i := 0; i < *perPool; i++ {
			wg.Add(1)
			go func(pool string) {
				defer wg.Done()
				runClient(ctx, picker, pool, *port, *user, *dbname, &queries, &failures)
			}(pool)
		}
	}

	db, err := sql.Open("postgres", *sampler)
	if err != nil {
		log.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	peak, samples, over := 0, 0, 0
	ticker := time.NewTicker(100 * time.Millisecond)
	for range ticker.C {
		var n int
		err := db.QueryRowContext(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", *user).Scan(&n)
		if err == nil {
			samples++
			if n > peak {
				peak = n
			}
			if n > *usable {
				over++
				log.Printf("over budget: %d server connections of %s > %d usable", n, *user, *usable)
			}
		}
		if _, err := os.Stat(*stopFile); err == nil {
			break
		}
	}
	cancel()
	wg.Wait()
	fmt.Printf("peak=%d usable=%d samples=%d over=%d queries=%d errors=%d\n",
		peak, *usable, samples, over, queries.Load(), failures.Load())
	if over > 0 {
		os.Exit(1)
	}
}

// runClient connects to a ready pod of its pool, runs queries, and moves to another pod every so
// often or after any failure (a pod stopping, a rotated password, a pool being deleted).
func runClient(ctx context.Context, picker *podPicker, pool string, port int, user, dbname string,
	queries, failures *atomic.Int64) {
	for ctx.Err() == nil {
		ip, password := picker.pick(pool)
		if ip == "" {
			sleep(ctx, 200*time.Millisecond)
			continue
		}
		dsn := fmt.Sprintf("host=%s port=%d user=%s password='%s' dbname=%s sslmode=disable connect_timeout=3",
			ip, port, user, strings.ReplaceAll(password, "'", `\'`), dbname)
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			failures.Add(1)
			continue
		}
		db.SetMaxOpenConns(1)
		for i := 0; i < 20 && ctx.Err() == nil; i++ {
			// Queries that mostly wait, not compute: the share of time a client holds a server
			// connection then stays high on a starved machine too (with 50 ms queries, two CI runs
			// at once left the peak at 18 of 55). Now and then a long query: a pooler that stops
			// must drain it, holding its server connection meanwhile, which is when old and new
			// pods overlap.
			query := "SELECT pg_sleep(0.2)"
			if rand.Intn(25) == 0 {
				query = "SELECT pg_sleep(2)"
			}
			qctx, done := context.WithTimeout(ctx, 10*time.Second)
			_, err = db.ExecContext(qctx, query)
			done()
			if err != nil {
				if ctx.Err() == nil {
					failures.Add(1)
				}
				break
			}
			queries.Add(1)
		}
		db.Close()
		if err != nil {
			sleep(ctx, 200*time.Millisecond+time.Duration(rand.Intn(300))*time.Millisecond)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
