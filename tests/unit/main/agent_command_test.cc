// `poolkeeper agent` and the pod the renderer makes for it agree on where the pod's budget figures
// are: the flag's default is the mount path, and the agent reads the files the volume projects.
#include "main/agent_command.h"

#include <gtest/gtest.h>

#include "agent/agent.h"
#include "render/render.h"

namespace poolkeeper::cli {
namespace {

TEST(AgentCommand, ReadsThePodsBudgetFiguresWhereTheRendererProjectsThem) {
  EXPECT_EQ(AgentFlags{}.pod_info_dir, render::kPodInfoDir);
  EXPECT_STREQ(agent::kPodConnectionsFile, render::kPodInfoConnectionsFile);
  EXPECT_STREQ(agent::kPodServerFile, render::kPodInfoServerFile);
  EXPECT_STREQ(agent::kPodPoolFile, render::kPodInfoPoolFile);
}

}  // namespace
}  // namespace poolkeeper::cli
