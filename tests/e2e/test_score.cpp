// `wensu score` as a user meets it: one JSON line with TMscore's numbers on a fixture pair of
// tests/data/score/, and one-line errors naming the files for a missing chain and for chains
// of different lengths.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "test_support.h"

namespace {

class ScoreCli : public wensu::test::CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    // Until `score` is registered in apps/wensu/main.cpp the binary does not know it.
    if (run("score --help") == 2 && err().find("unknown command") != std::string::npos)
      GTEST_SKIP() << "`wensu score` is not registered in apps/wensu/main.cpp";
  }
  std::string data(const std::string& name) const { return wensu::test::test_data_dir() + "/score/" + name; }
};

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

}  // namespace

TEST_F(ScoreCli, PrintsTMscoresNumbersAsOneJsonLine) {
  ASSERT_EQ(run("score --help"), 0) << err();
  EXPECT_NE(out().find("--chain-ref"), std::string::npos);

  // The first fixture row: pred, ref, tm_score, rmsd, gdt_ts, length.
  std::ifstream csv(data("tmscore.csv"));
  std::string line;
  while (std::getline(csv, line) && (line.empty() || line[0] == '#' || line.rfind("pred,", 0) == 0)) {
  }
  ASSERT_FALSE(line.empty()) << "no pair in " << data("tmscore.csv");
  std::stringstream ss(line);
  std::string pred, ref, tm, rmsd, gdt, length;
  for (std::string* f : {&pred, &ref, &tm, &rmsd, &gdt, &length}) std::getline(ss, *f, ',');

  ASSERT_EQ(run("score '" + data(pred) + "' '" + data(ref) + "'"), 0) << err();
  EXPECT_EQ(lines(out()), 1) << out();
  const nlohmann::json j = nlohmann::json::parse(out());
  EXPECT_NEAR(j.at("tm_score").get<double>(), std::stod(tm), 0.01) << out();
  EXPECT_NEAR(j.at("rmsd").get<double>(), std::stod(rmsd), 0.01) << out();
  EXPECT_NEAR(j.at("gdt_ts").get<double>(), std::stod(gdt), 0.01) << out();
  EXPECT_GT(j.at("lddt_ca").get<double>(), 0.0);
  EXPECT_LE(j.at("lddt_ca").get<double>(), 1.0);
  EXPECT_EQ(j.at("length").get<int64_t>(), std::stoll(length));
  EXPECT_EQ(j.at("pred").get<std::string>(), data(pred));
  EXPECT_EQ(j.at("ref").get<std::string>(), data(ref));
}

TEST_F(ScoreCli, ErrorsNameTheFiles) {
  EXPECT_EQ(run("score '" + data("5eep.pdb") + "' '" + data("5eep.pdb") + "' --chain-ref Q"), 1);
  EXPECT_EQ(lines(err()), 1) << err();
  EXPECT_NE(err().find(data("5eep.pdb")), std::string::npos) << err();
  EXPECT_NE(err().find("'Q'"), std::string::npos) << err();

  EXPECT_EQ(run("score '" + data("1zaa1.pdb") + "' '" + data("5eep.pdb") + "'"), 1);
  EXPECT_EQ(lines(err()), 1) << err();
  EXPECT_NE(err().find("1zaa1"), std::string::npos) << err();
  EXPECT_NE(err().find("5eep"), std::string::npos) << err();

  EXPECT_EQ(run("score '" + data("5eep.pdb") + "'"), 1) << "one structure is not enough";
}
