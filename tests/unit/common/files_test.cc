#include "common/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace poolkeeper {
namespace {

namespace fs = std::filesystem;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("pk-files-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FilesTest, WritesWithTheModeAskedAndLeavesNoTemporaryFile) {
  const std::string path = (dir_ / "userlist.txt").string();
  ASSERT_TRUE(WriteFileAtomically(path, "secret", 0600));
  EXPECT_EQ(*ReadFile(path), "secret");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

// Issue 12, item 8: the temporary name was path + ".tmp." + pid; a symlink planted there sent the
// content (a userlist) wherever it pointed.
TEST_F(FilesTest, APlantedSymlinkAtAGuessableTemporaryNameIsNotFollowed) {
  const std::string path = (dir_ / "userlist.txt").string();
  const std::string victim = (dir_ / "victim").string();
  ASSERT_TRUE(WriteFileAtomically(victim, "untouched"));
  fs::create_symlink(victim, path + ".tmp." + std::to_string(::getpid()));
  ASSERT_TRUE(WriteFileAtomically(path, "secret", 0600));
  EXPECT_EQ(*ReadFile(victim), "untouched");
  EXPECT_EQ(*ReadFile(path), "secret");
}

}  // namespace
}  // namespace poolkeeper
