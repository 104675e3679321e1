#include "kube/informer.h"

#include <gtest/gtest.h>

#include <future>
#include <map>

#include "../common/no_threads.h"
#include "fake_transport.h"

namespace poolkeeper::kube {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Bookmark;
using testing::Event;
using testing::FakeTransport;
using testing::StatusBody;

constexpr char kConfigMaps[] = "/api/v1/namespaces/shop/configmaps";

json ConfigMap(std::string name, std::string rv, std::string ns = "shop") {
  return {{"metadata",
           {{"name", name},
            {"namespace", ns},
            {"resourceVersion", rv},
            {"managedFields", {{{"manager", "kubectl"}, {"operation", "Apply"}}}}}},
          {"data", {{"v", rv}}}};
}

json ListBody(std::string rv, std::vector<json> items, std::string continue_token = "") {
  json metadata{{"resourceVersion", rv}};
  if (!continue_token.empty()) metadata["continue"] = continue_token;
  return {{"metadata", metadata}, {"items", items}};
}

std::string Rv(const ObjectPtr& object) {
  return object ? (*object)["metadata"]["resourceVersion"].get<std::string>() : "<null>";
}

// What the handlers saw, one line per call: "add shop/a@3", "update shop/a@3->4", "delete
// shop/b@5".
class Recorder {
 public:
  InformerHandlers Handlers() {
    return {.on_add = [this](const ObjectPtr& o) { calls.push_back("add " + Name(o)); },
            .on_update =
                [this](const ObjectPtr& before, const ObjectPtr& after) {
                  calls.push_back("update " + Name(before) + "->" + Rv(after));
                },
            .on_delete = [this](const ObjectPtr& o) { calls.push_back("delete " + Name(o)); }};
  }
  std::vector<std::string> Take() { return std::exchange(calls, {}); }
  std::vector<std::string> calls;

 private:
  static std::string Name(const ObjectPtr& o) { return ObjectKey(*o) + "@" + Rv(o); }
};

// An informer of ConfigMaps in "shop" over a scripted server and a fake clock.
struct Harness {
  // `pack`: the store keeps CBOR bytes (InformerOptions::pack).
  explicit Harness(bool pack = false)
      : informer{client,
                 clock,
                 {.type = resources::kConfigMap,
                  .ns = "shop",
                  .initial_backoff = milliseconds(500),
                  .max_backoff = seconds(4),
                  .pack = pack}} {
    informer.AddHandlers(recorder.Handlers());
  }

  // The first LIST of {a@3, b@4} at version 10, done.
  void Synced() {
    transport.RespondJson("GET", kConfigMaps, 200,
                          ListBody("10", {ConfigMap("a", "3"), ConfigMap("b", "4")}));
    ASSERT_TRUE(informer.Step());
    recorder.Take();
  }
  void Watch(const std::vector<json>& events, std::optional<Error> after = std::nullopt,
             std::function<void()> on_chunk = nullptr) {
    transport.QueueWatch(kConfigMaps, events, 13, std::move(after), std::move(on_chunk));
  }
  // A query parameter of the last request, still encoded.
  std::string LastQuery(const std::string& key) {
    std::string path = transport.LastRequest().path;
    for (const char* separator : {"?", "&"}) {
      size_t at = path.find(separator + key + "=");
      if (at == std::string::npos) continue;
      size_t start = at + key.size() + 2;
      return path.substr(start, path.find('&', start) - start);
    }
    return "<absent>";
  }
  Clock::Duration Wait() const { return informer.NextAttempt() - clock.Now(); }

  FakeTransport transport;
  FakeClock clock;
  Client client{transport, {.list_page_size = 1, .jitter_seed = 1}};
  Informer informer;
  Recorder recorder;
};

class InformerTest : public ::testing::Test, public Harness {};

TEST_F(InformerTest, FirstListFillsTheStoreAcrossPagesThenReportsSynced) {
  transport.RespondJson("GET", kConfigMaps, 200, ListBody("10", {ConfigMap("a", "3")}, "next"));
  transport.RespondJson("GET", kConfigMaps, 200, ListBody("10", {ConfigMap("b", "4")}));
  bool synced_in_handler = true;
  informer.AddHandlers({.on_add = [&](const ObjectPtr& o) {
    synced_in_handler = informer.HasSynced();
    EXPECT_TRUE(informer.Get(ObjectKey(*o))) << "handlers run outside the lock, store updated";
  }});
  EXPECT_FALSE(informer.HasSynced());
  EXPECT_FALSE(informer.WaitForSync(milliseconds(0)));

  ASSERT_TRUE(informer.Step());
  EXPECT_TRUE(informer.HasSynced());
  EXPECT_TRUE(informer.WaitForSync(milliseconds(0)));
  EXPECT_FALSE(synced_in_handler) << "synced only once the initial adds were handled";
  EXPECT_EQ(informer.Size(), 2u);
  EXPECT_EQ(Rv(informer.Get("shop", "b")), "4");
  EXPECT_EQ(informer.ResourceVersion(), "10");
  EXPECT_EQ(informer.Relists(), 1u);
  EXPECT_EQ(recorder.Take(), (std::vector<std::string>{"add shop/a@3", "add shop/b@4"}));
}

TEST_F(InformerTest, WatchEventsUpdateTheStoreAndCallHandlers) {
  Synced();
  Watch({Event("ADDED", ConfigMap("c", "11")), Event("MODIFIED", ConfigMap("a", "12")),
         Event("DELETED", ConfigMap("b", "13"))});
  ASSERT_TRUE(informer.Step());
  EXPECT_EQ(LastQuery("resourceVersion"), "10");
  EXPECT_EQ(LastQuery("allowWatchBookmarks"), "true");
  EXPECT_EQ(recorder.Take(),
            (std::vector<std::string>{"add shop/c@11", "update shop/a@3->12", "delete shop/b@13"}));
  EXPECT_EQ(Rv(informer.Get("shop/a")), "12");
  EXPECT_EQ(informer.Get("shop/b"), nullptr);
  EXPECT_EQ(informer.Size(), 2u);
  EXPECT_EQ(informer.ResourceVersion(), "13");
}

TEST_F(InformerTest, BookmarkAdvancesTheVersionWithoutCallingHandlers) {
  Synced();
  Watch({Bookmark("42")});
  ASSERT_TRUE(informer.Step());
  EXPECT_TRUE(recorder.Take().empty());
  EXPECT_EQ(informer.ResourceVersion(), "42");
  EXPECT_EQ(informer.Size(), 2u);
}

TEST_F(InformerTest, WatchEndedByTheServerResumesFromTheLastVersionWithoutListing) {
  Synced();
  Watch({Event("MODIFIED", ConfigMap("a", "12")), Bookmark("15")});
  ASSERT_TRUE(informer.Step());
  Watch({});
  ASSERT_TRUE(informer.Step());
  EXPECT_EQ(LastQuery("resourceVersion"), "15");
  EXPECT_EQ(informer.Relists(), 1u);
  EXPECT_EQ(informer.NextAttempt(), clock.Now()) << "a clean end is no failure";
}

TEST(Informer, LostWatchRelistsAndReportsWhatChangedMeanwhile) {
  json expired = json::parse(StatusBody(410, "Expired", "too old resource version"));
  struct Case {
    std::string name;
    std::function<void(Harness&)> fail_watch;
    ErrorCode code;
    std::string last_b;  // the version of b the deletion reports: the last one seen
  };
  std::vector<Case> cases = {
      {"ERROR 410 event", [&](Harness& h) { h.Watch({Event("ERROR", expired)}); }, ErrorCode::kGone,
       "4"},
      {"HTTP 410",
       [&](Harness& h) { h.transport.Respond("GET", kConfigMaps, 410, expired.dump()); },
       ErrorCode::kGone, "4"},
      {"broken stream",
       [](Harness& h) {
         h.Watch({Event("MODIFIED", ConfigMap("b", "11"))},
                 Error{ErrorCode::kUnavailable, "connection reset", {}, 0});
       },
       ErrorCode::kUnavailable, "11"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Harness h;
    h.Synced();
    c.fail_watch(h);
    auto watched = h.informer.Step();
    ASSERT_FALSE(watched);
    EXPECT_EQ(watched.error().code, c.code);
    h.recorder.Take();

    // Meanwhile b was deleted, a changed and c created: the relist must say so, as client-go's
    // Replace does, since the events that said it were missed.
    h.transport.RespondJson("GET", kConfigMaps, 200,
                            ListBody("30", {ConfigMap("a", "20"), ConfigMap("c", "21")}));
    h.clock.Advance(h.Wait());
    ASSERT_TRUE(h.informer.Step());
    EXPECT_EQ(h.transport.LastRequest().path, std::string(kConfigMaps) + "?limit=1")
        << "a fresh LIST, not one pinned to a version";
    EXPECT_EQ(h.recorder.Take(),
              (std::vector<std::string>{"delete shop/b@" + c.last_b, "update shop/a@3->20",
                                        "add shop/c@21"}));
    EXPECT_EQ(h.informer.Relists(), 2u);
    EXPECT_EQ(h.informer.ResourceVersion(), "30");
    EXPECT_EQ(h.informer.Size(), 2u);
    EXPECT_EQ(h.LastQuery("resourceVersion"), "<absent>");
  }
}

TEST(Informer, PackedStoreReportsAndReadsWhatATreeStoreDoes) {
  std::map<bool, std::vector<std::string>> calls;
  std::map<bool, std::vector<json>> read;
  for (bool pack : {false, true}) {
    SCOPED_TRACE(pack ? "packed" : "tree");
    Harness h(pack);
    h.Synced();
    h.Watch({Event("ADDED", ConfigMap("c", "11")), Event("MODIFIED", ConfigMap("a", "12")),
             Event("DELETED", ConfigMap("b", "13"))},
            Error{ErrorCode::kUnavailable, "connection reset", {}, 0});
    ASSERT_FALSE(h.informer.Step());
    h.transport.RespondJson("GET", kConfigMaps, 200,
                            ListBody("30", {ConfigMap("a", "20"), ConfigMap("d", "21")}));
    h.clock.Advance(h.Wait());
    ASSERT_TRUE(h.informer.Step());
    calls[pack] = h.recorder.Take();
    for (const ObjectPtr& object : h.informer.List()) read[pack].push_back(*object);
    std::vector<json> visited;
    h.informer.ForEach([&visited](const json& object) { visited.push_back(object); });
    EXPECT_EQ(visited, read[pack]) << "ForEach visits what List lists, in the same order";
    read[pack].push_back(*h.informer.Get("shop/d"));
    EXPECT_EQ(h.informer.GetValue("shop", "d"), read[pack].back()) << "a value reads the same";
    EXPECT_FALSE(h.informer.GetValue("shop", "b")) << "deleted";
    // A packed store decodes a tree per read, so no reader holds on to the store's own copy.
    EXPECT_EQ(h.informer.Get("shop/a") == h.informer.Get("shop/a"), !pack);
  }
  EXPECT_EQ(calls[true], calls[false]);
  EXPECT_EQ(calls[true], (std::vector<std::string>{"add shop/c@11", "update shop/a@3->12",
                                                   "delete shop/b@13", "delete shop/c@11",
                                                   "update shop/a@12->20", "add shop/d@21"}));
  EXPECT_EQ(read[true], read[false]);
  ASSERT_EQ(read[true].size(), 3u);
  // A listed item gets its kind back (a LIST omits it); managedFields are gone either way.
  EXPECT_EQ(read[true][2],
            (json{{"apiVersion", "v1"},
                  {"kind", "ConfigMap"},
                  {"metadata", {{"name", "d"}, {"namespace", "shop"}, {"resourceVersion", "21"}}},
                  {"data", {{"v", "21"}}}}));
}

TEST_F(InformerTest, RelistOfUnchangedObjectsCallsNoHandler) {
  Synced();
  transport.Respond("GET", kConfigMaps, 410, StatusBody(410, "Expired"));
  ASSERT_FALSE(informer.Step());
  transport.RespondJson("GET", kConfigMaps, 200,
                        ListBody("12", {ConfigMap("a", "3"), ConfigMap("b", "4")}));
  ASSERT_TRUE(informer.Step());
  EXPECT_TRUE(recorder.Take().empty());
}

TEST_F(InformerTest, BackoffDoublesOnEachFailureUpToTheCapAndResetsAfterAWorkingWatch) {
  for (Clock::Duration want : {milliseconds(500), milliseconds(1000), milliseconds(2000),
                               milliseconds(4000), milliseconds(4000)}) {
    transport.Respond("GET", kConfigMaps, 503, StatusBody(503, "ServiceUnavailable"));
    ASSERT_FALSE(informer.Step());
    EXPECT_EQ(Wait(), want) << "after " << informer.Failures() << " failures";
    clock.Advance(Wait());
  }
  EXPECT_FALSE(informer.HasSynced());

  // A LIST that works lets the watch start at once, but does not forgive yet: a watch that
  // fails at once keeps backing off, so a sick server is not listed in a tight loop.
  transport.RespondJson("GET", kConfigMaps, 200, ListBody("10", {}));
  ASSERT_TRUE(informer.Step());
  EXPECT_EQ(Wait(), Clock::Duration::zero());
  EXPECT_EQ(informer.Failures(), 5);

  Watch({Bookmark("11")});  // a watch that worked
  ASSERT_TRUE(informer.Step());
  EXPECT_EQ(informer.Failures(), 0);
  EXPECT_EQ(Wait(), Clock::Duration::zero());

  transport.Respond("GET", kConfigMaps, 410, StatusBody(410, "Expired"));
  ASSERT_FALSE(informer.Step());
  EXPECT_EQ(Wait(), milliseconds(500)) << "the count started again";
}

TEST_F(InformerTest, WatchThatFailsAfterDeliveringEventsStartsTheBackoffAgain) {
  Synced();
  transport.Respond("GET", kConfigMaps, 503, "");
  ASSERT_FALSE(informer.Step());
  transport.RespondJson("GET", kConfigMaps, 200, ListBody("10", {}));
  ASSERT_TRUE(informer.Step());
  Watch({Event("ADDED", ConfigMap("c", "11"))},
        Error{ErrorCode::kUnavailable, "connection reset", {}, 0});
  ASSERT_FALSE(informer.Step());
  EXPECT_EQ(informer.Failures(), 1);
  EXPECT_EQ(Wait(), milliseconds(500));
}

TEST_F(InformerTest, HonoursRetryAfterWhenLongerThanTheBackoff) {
  transport.Queue(
      "GET", kConfigMaps,
      {.response = {.status = 429, .body = StatusBody(429, "TooManyRequests"), .retry_after = 7}});
  ASSERT_FALSE(informer.Step());
  EXPECT_EQ(Wait(), seconds(7));
}

TEST_F(InformerTest, ReportsWhyTheLastAttemptFailedUntilOneWorks) {
  // A resource type that is not served (its CRD not installed yet) answers 404.
  transport.Respond("GET", kConfigMaps, 404, StatusBody(404, "NotFound"));
  ASSERT_FALSE(informer.Step());
  EXPECT_EQ(informer.LastFailure(), ErrorCode::kNotFound);
  EXPECT_FALSE(informer.HasSynced());
  Synced();
  EXPECT_FALSE(informer.LastFailure());
  EXPECT_TRUE(informer.HasSynced());
}

TEST_F(InformerTest, ATypeThatBecomesServedStartsAFreshBackoff) {
  for (int i = 0; i < 5; ++i) {
    transport.Respond("GET", kConfigMaps, 404, StatusBody(404, "NotFound"));
    ASSERT_FALSE(informer.Step());
  }
  EXPECT_EQ(Wait(), seconds(4));  // capped
  Synced();
  // The first watch fails (its cache still warming up): the backoff starts again, not at the cap.
  ASSERT_FALSE(informer.Step());
  EXPECT_EQ(Wait(), milliseconds(500));
}

TEST_F(InformerTest, StoresObjectsWithoutManagedFields) {
  Synced();
  Watch({Event("ADDED", ConfigMap("c", "11"))});
  ASSERT_TRUE(informer.Step());
  for (const char* key : {"shop/a", "shop/c"}) {
    ObjectPtr object = informer.Get(key);
    ASSERT_TRUE(object) << key;
    EXPECT_FALSE((*object)["metadata"].contains("managedFields")) << key;
    EXPECT_EQ((*object)["metadata"]["name"], std::string(key).substr(5));
  }

  Harness keeping;
  Informer raw{keeping.client,
               keeping.clock,
               {.type = resources::kConfigMap, .ns = "shop", .strip_managed_fields = false}};
  keeping.transport.RespondJson("GET", kConfigMaps, 200, ListBody("10", {ConfigMap("a", "3")}));
  ASSERT_TRUE(raw.Step());
  EXPECT_TRUE((*raw.Get("shop/a"))["metadata"].contains("managedFields"));
}

TEST(Informer, TrimsListedAndWatchedObjectsBeforeStoringAndHandingThemOn) {
  Harness h;
  Informer trimmed{
      h.client, h.clock, {.type = resources::kConfigMap, .ns = "shop", .trim = [](json& object) {
                            object.erase("data");
                          }}};
  std::vector<json> handed;
  trimmed.AddHandlers(
      {.on_add = [&](const ObjectPtr& o) { handed.push_back(*o); },
       .on_update = [&](const ObjectPtr&, const ObjectPtr& o) { handed.push_back(*o); }});
  h.transport.RespondJson("GET", kConfigMaps, 200, ListBody("10", {ConfigMap("a", "3")}));
  ASSERT_TRUE(trimmed.Step());
  h.transport.QueueWatch(kConfigMaps, {Event("MODIFIED", ConfigMap("a", "11"))}, 13);
  ASSERT_TRUE(trimmed.Step());

  ASSERT_EQ(handed.size(), 2u);
  for (const json& object : handed) EXPECT_FALSE(object.contains("data")) << object;
  const json& stored = *trimmed.Get("shop/a");
  EXPECT_FALSE(stored.contains("data"));
  EXPECT_FALSE(stored["metadata"].contains("managedFields"));
  EXPECT_EQ(stored["metadata"]["resourceVersion"], "11");
}

TEST_F(InformerTest, PassesSelectorsToListAndWatch) {
  Harness h;
  Informer selected{h.client,
                    h.clock,
                    {.type = resources::kConfigMap,
                     .ns = "shop",
                     .label_selector = "app.kubernetes.io/managed-by=poolkeeper"}};
  h.transport.RespondJson("GET", kConfigMaps, 200, ListBody("10", {}));
  ASSERT_TRUE(selected.Step());
  EXPECT_EQ(h.LastQuery("labelSelector"), "app.kubernetes.io%2Fmanaged-by%3Dpoolkeeper");
  h.transport.QueueWatch(kConfigMaps, {});
  ASSERT_TRUE(selected.Step());
  EXPECT_EQ(h.LastQuery("labelSelector"), "app.kubernetes.io%2Fmanaged-by%3Dpoolkeeper");
}

TEST_F(InformerTest, StopEndsAWatchAtItsNextData) {
  Synced();
  Watch({Event("ADDED", ConfigMap("c", "11")), Event("ADDED", ConfigMap("d", "12"))}, std::nullopt,
        [&] { informer.Stop(); });
  ASSERT_TRUE(informer.Step());
  EXPECT_EQ(informer.Get("shop/c"), nullptr) << "nothing after Stop() is applied";
  EXPECT_TRUE(recorder.Take().empty());
  EXPECT_EQ(transport.Unused(), 0u);
}

TEST_F(InformerTest, StartedInformerSyncsOnTheLoopAndStopsPromptly) {
  transport.RespondJson("GET", kConfigMaps, 200, ListBody("10", {ConfigMap("a", "3")}));
  // The watch that follows is not scripted: it fails, and the next attempt waits out its backoff
  // in the loop's queue until Stop() takes it out.
  InformerLoop loop(clock);
  ASSERT_TRUE(loop.Start());
  informer.Start(loop);
  EXPECT_TRUE(informer.WaitForSync(seconds(10)));
  informer.Stop();
  EXPECT_TRUE(informer.Stopped());
  EXPECT_EQ(loop.Pending(), 0u) << "the attempt it had queued is gone";
  EXPECT_EQ(Rv(informer.Get("shop/a")), "3");
}

// A handler (on the loop) may end another informer's run: RequestStop does not wait for it.
TEST_F(InformerTest, AHandlerMayRequestAnotherInformerToStop) {
  Harness other_harness;
  Informer& other = other_harness.informer;
  InformerLoop loop(clock);
  ASSERT_TRUE(loop.Start());
  other.Start(loop);  // its LIST is not scripted: it fails and waits out its backoff
  std::promise<void> asked;
  informer.AddHandlers({.on_add = [&](const ObjectPtr&) {
    other.RequestStop();
    asked.set_value();
  }});
  transport.RespondJson("GET", kConfigMaps, 200, ListBody("10", {ConfigMap("a", "3")}));
  informer.Start(loop);
  ASSERT_EQ(asked.get_future().wait_for(seconds(10)), std::future_status::ready);
  other.Stop();
  EXPECT_TRUE(other.Stopped());
  informer.Stop();
}

// Issue 12: under a pids limit the operator aborted (std::system_error from std::thread) and
// crash-looped. Informers run on a loop; a loop whose thread cannot be created says so.
TEST_F(InformerTest, ALoopWhoseThreadCannotBeCreatedIsAnErrorNotAnAbort) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer does not start threads in a forked child";
#endif
  int code = poolkeeper::testing::RunWithoutNewThreads([this] {
    InformerLoop loop(clock);
    Status started = loop.Start();
    if (started) return 1;
    if (started.error().code != ErrorCode::kUnavailable) return 2;
    if (started.error().message.find("cannot start thread informers-0") == std::string::npos) {
      return 3;
    }
    return 0;
  });
  EXPECT_EQ(code, 0);
}

TEST(InformerGroup, WatchesEachNamespaceOnceAndReadsAsOneCache) {
  Harness h;
  InformerGroup group(h.client, h.clock, {.type = resources::kConfigMap}, {"web", "shop", "web"});
  ASSERT_EQ(group.informers().size(), 2u);
  Recorder recorder;
  group.AddHandlers(recorder.Handlers());
  h.transport.RespondJson("GET", "/api/v1/namespaces/shop/configmaps", 200,
                          ListBody("10", {ConfigMap("a", "3")}));
  h.transport.RespondJson("GET", "/api/v1/namespaces/web/configmaps", 200,
                          ListBody("11", {ConfigMap("a", "5", "web")}));
  ASSERT_TRUE(group.informers()[0]->Step());
  EXPECT_FALSE(group.HasSynced());
  EXPECT_FALSE(group.WaitForSync(milliseconds(0)));
  ASSERT_TRUE(group.informers()[1]->Step());
  EXPECT_TRUE(group.HasSynced());
  EXPECT_EQ(Rv(group.Get("shop", "a")), "3");
  EXPECT_EQ(Rv(group.Get("web", "a")), "5");
  EXPECT_EQ(group.Get("other", "a"), nullptr);
  EXPECT_EQ(group.List().size(), 2u);
  EXPECT_EQ(recorder.Take(), (std::vector<std::string>{"add shop/a@3", "add web/a@5"}));
}

TEST(InformerGroup, WithoutNamespacesWatchesAllOfThem) {
  Harness h;
  InformerGroup group(h.client, h.clock, {.type = resources::kConfigMap}, {});
  ASSERT_EQ(group.informers().size(), 1u);
  h.transport.RespondJson("GET", "/api/v1/configmaps", 200,
                          ListBody("10", {ConfigMap("a", "3"), ConfigMap("a", "4", "web")}));
  ASSERT_TRUE(group.informers()[0]->Step());
  EXPECT_EQ(Rv(group.Get("web", "a")), "4");
  EXPECT_EQ(group.List().size(), 2u);
}

}  // namespace
}  // namespace poolkeeper::kube
