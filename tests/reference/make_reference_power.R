# Reference numbers for tests/test_power.py, written to power.json.
# Run from the repository root:  Rscript tests/reference/make_reference_power.R
#
# 1. Analytic power of a cluster-randomised trial (Raudenbush 1997, eq. 9-10): half of J groups
#    treated, n per group, ICC rho, standardized effect delta; the t statistic of the treatment
#    effect is noncentral t with J - 2 df and noncentrality delta / sqrt(4 (rho + (1 - rho) / n) / J).
# 2. Power of the one-way ANOVA F test of tau^2 = 0 with J equal groups of n: F / (1 + n tau2 / sigma2)
#    follows F(J - 1, J (n - 1)).
# 3. Power by simulation with lme4 itself: lmer(y ~ treatment + (1 | group)) by REML and the Wald t
#    with J - 2 df, as simr's powerSim would run it with a between-cluster test.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})

crt_power <- function(J, n, rho, delta, alpha = 0.05) {
  se <- sqrt(4 * (rho + (1 - rho) / n) / J)
  crit <- qt(1 - alpha / 2, J - 2)
  pt(crit, J - 2, ncp = delta / se, lower.tail = FALSE) + pt(-crit, J - 2, ncp = delta / se)
}
grid <- expand.grid(J = c(10, 20, 40), n = c(5, 20), rho = c(0.05, 0.2), delta = c(0.3, 0.6))
grid$power <- mapply(crt_power, grid$J, grid$n, grid$rho, grid$delta)

f_power <- function(J, n, rho, alpha = 0.05) {
  crit <- qf(1 - alpha, J - 1, J * (n - 1))
  pf(crit / (1 + n * rho / (1 - rho)), J - 1, J * (n - 1), lower.tail = FALSE)
}
fgrid <- expand.grid(J = c(10, 30), n = c(5, 20), rho = c(0.02, 0.1))
fgrid$power <- mapply(f_power, fgrid$J, fgrid$n, fgrid$rho)

simulate_crt <- function(J, n, rho, delta, reps, seed) {
  set.seed(seed)
  group <- factor(rep(seq_len(J), each = n))
  treatment <- rep(rep(c(1, 0), length.out = J), each = n)
  reject <- logical(reps)
  for (r in seq_len(reps)) {
    y <- delta * treatment + rnorm(J, 0, sqrt(rho))[group] + rnorm(J * n, 0, sqrt(1 - rho))
    fit <- suppressMessages(lmer(y ~ treatment + (1 | group)))
    t <- coef(summary(fit))["treatment", "t value"]
    reject[r] <- 2 * pt(abs(t), J - 2, lower.tail = FALSE) < 0.05
  }
  list(J = J, n = n, rho = rho, delta = delta, reps = reps, power = mean(reject))
}
lme4_sim <- list(simulate_crt(20, 10, 0.1, 0.5, 1000, 2026), simulate_crt(12, 25, 0.2, 0.8, 1000, 2027))

out <- list(
  generated_by = "tests/reference/make_reference_power.R",
  r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
  crt_analytic = grid, anova_f_analytic = fgrid, lme4_simulation = lme4_sim
)
write_json(out, "tests/reference/power.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
