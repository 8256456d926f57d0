# Reference values from R's clubSandwich for mlmcourse.robust.
#
# Run from the repository root:
#     Rscript tests/reference/make_reference_robust.R
# It reads data/hsb_students.csv and data/hsb_schools.csv and writes
# tests/reference/robust.json. The tests read the JSON, never R.
#
# Each record is coef_test(lm(formula, data), vcov = type, cluster = ~ group,
# test = ...) for an OLS fit: CR2 (Bell & McCaffrey 2002) with the
# Satterthwaite degrees of freedom of Pustejovsky & Tipton (2018), and CR1S
# (Stata's vce(cluster) small-sample factor) with the naive (clusters - 1) df.

suppressPackageStartupMessages({
  library(clubSandwich)
  library(jsonlite)
})
invisible(Sys.setlocale("LC_COLLATE", "C"))

if (!file.exists(file.path("data", "datasets.json"))) {
  stop("run from the repository root: Rscript tests/reference/make_reference_robust.R")
}
registry <- fromJSON(file.path("data", "datasets.json"), simplifyVector = TRUE)

students <- read.csv(file.path("data", "hsb_students.csv"), stringsAsFactors = FALSE)
schools <- read.csv(file.path("data", "hsb_schools.csv"), stringsAsFactors = FALSE)
schools$MEANSES <- NULL
hsb <- merge(students, schools, by = "School", sort = FALSE)
hsb$School <- as.character(hsb$School)
hsb$Sector <- factor(hsb$Sector, levels = sort(unique(hsb$Sector), method = "radix"))
stopifnot(nrow(hsb) == 7185, levels(hsb$Sector)[1] == "Catholic")
hsb40 <- hsb[hsb$School %in% registry$hsb40$subset, ]
stopifnot(nrow(hsb40) == 1977, length(unique(hsb40$School)) == 40)

# A 10-school subset: the first ten schools of hsb40 in code-point order.
ten_ids <- sort(unique(hsb40$School), method = "radix")[1:10]
hsb10 <- hsb40[hsb40$School %in% ten_ids, ]

cases <- list(
  list(id = "hsb40_sector", data = "hsb40", formula = "MathAch ~ Sector", group = "School"),
  list(id = "hsb40_ses_sector", data = "hsb40", formula = "MathAch ~ SES * Sector", group = "School"),
  list(id = "hsb10_ses_sector", data = "hsb10", formula = "MathAch ~ SES + Sector", group = "School",
       schools = ten_ids)
)
frames <- list(hsb40 = hsb40, hsb10 = hsb10)

one_test <- function(fit, cluster, type, test) {
  out <- coef_test(fit, vcov = type, cluster = cluster, test = test)
  ci <- conf_int(fit, vcov = type, cluster = cluster, test = test, level = 0.95)
  list(type = type, test = test, term = I(as.character(out$Coef)), estimate = I(unname(out$beta)),
       std_error = I(unname(out$SE)), statistic = I(unname(out$tstat)), df = I(unname(out$df)),
       p_value = I(unname(out$p_Satt %||% out$p_t)),
       conf_low = I(unname(ci$CI_L)), conf_high = I(unname(ci$CI_U)))
}
`%||%` <- function(a, b) if (is.null(a)) b else a

records <- list()
for (case in cases) {
  d <- frames[[case$data]]
  fit <- lm(as.formula(case$formula), data = d)
  cluster <- d[[case$group]]
  case$results <- list(
    CR2 = one_test(fit, cluster, "CR2", "Satterthwaite"),
    CR1S = one_test(fit, cluster, "CR1S", "naive-t")
  )
  case$nobs <- nrow(d)
  case$ngroups <- length(unique(cluster))
  if (!is.null(case$schools)) case$schools <- I(case$schools)
  records[[case$id]] <- case
}

meta <- list(R = R.version.string, clubSandwich = as.character(packageVersion("clubSandwich")),
             date = format(Sys.Date()))
write_json(list(meta = meta, cases = records), file.path("tests", "reference", "robust.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/robust.json\n")
